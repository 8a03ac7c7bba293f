"""level4_fraud"""

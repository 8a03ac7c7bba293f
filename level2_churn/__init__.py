"""level2_churn"""

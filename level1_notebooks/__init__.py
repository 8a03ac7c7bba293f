"""level1_notebooks"""

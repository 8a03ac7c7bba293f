"""level5_discovery"""

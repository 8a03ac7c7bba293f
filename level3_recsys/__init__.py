"""level3_recsys"""

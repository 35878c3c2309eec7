"""tunesmith.encode"""

"""tunesmith.evaluate"""

"""tunesmith.config"""

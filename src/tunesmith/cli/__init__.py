"""tunesmith.cli"""

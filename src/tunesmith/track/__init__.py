"""tunesmith.track"""

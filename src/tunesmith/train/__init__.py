"""tunesmith.train"""

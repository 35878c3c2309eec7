"""Deployment monitors (PII, training-data reproduction, canaries, input drift, output quality)."""

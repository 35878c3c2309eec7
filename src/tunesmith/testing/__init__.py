"""Tiny models and tokenizers built in code, for tests and examples that must not download anything."""

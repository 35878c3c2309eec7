"""Serve a base model and its tuned adapters behind an OpenAI-compatible HTTP API, with deployment monitors.

Layout: `settings` (knobs), `engine` (models + batched greedy/sampled decoding with a KV cache), `batcher` (one
worker thread owning the model, a bounded queue), `monitors/` (registered checks on every exchange, writing
alerts as JSON lines and Prometheus counters), `app` (FastAPI routes), `loading` (a run folder to an engine).
FastAPI, uvicorn and prometheus-client are the `serve` extra; nothing here is imported by the CLI at start.
"""

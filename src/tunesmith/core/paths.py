"""Where tunesmith keeps its cache (converted models, prepared demo data, downloads). Imports no torch."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "TUNESMITH_CACHE"


def tunesmith_cache_dir() -> Path:
    """`$TUNESMITH_CACHE` when set (and non-empty), else `~/.cache/tunesmith`. The folder is not created here."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "tunesmith"

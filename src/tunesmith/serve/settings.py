"""Serving knobs: batching, queue bound, limits, and the monitors' thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServeSettings:
    """Everything `create_app` needs besides the models; defaults suit a laptop CPU."""

    max_batch_size: int = 8
    """Most requests decoded together in one batch."""
    max_queue: int = 64
    """Waiting requests beyond this are refused with 429 and Retry-After."""
    batch_wait_ms: float = 5.0
    """How long the worker waits for more requests to join a batch once one arrived."""
    default_max_tokens: int = 64
    """Completion length when a request names none."""
    max_tokens_cap: int = 1024
    """Largest max_tokens a request may ask for."""
    retry_after_s: int = 1
    """Retry-After header on a 429."""
    monitor_dir: Path | None = None
    """Where alerts.jsonl goes (`<run>/monitor`); None keeps alerts in memory and /metrics only."""
    monitors: tuple[str, ...] = ("pii", "leakage", "canary", "drift", "quality")
    """Registered monitors to run on every exchange."""
    redact_pii: bool = False
    """Replace PII found in an answer by `<ENTITY>` before it leaves (streams are then sent in one piece)."""
    canaries: list[str] = field(default_factory=list)
    """Strings that must never appear in an answer (planted in the training data by an audit)."""
    leakage_threshold: float = 0.7
    """Share of a training record's word 3-grams found in an answer at which it counts as reproduced."""
    leakage_candidate_jaccard: float = 0.3
    """Loose MinHash Jaccard cut that picks the candidate records checked for containment."""
    leakage_min_words: int = 8
    """Answers shorter than this are not checked for reproduction (short labels repeat by design)."""
    drift_window: int = 200
    """Prompts in the sliding window compared with the training prompts' token lengths."""
    drift_min_samples: int = 30
    """No drift verdict before this many prompts were seen."""
    drift_threshold: float = 3.0
    """Alert when the window's mean token length is this many standard errors from the training mean."""
    quality_window: int = 100
    """Answers in the sliding window for empty / refusal rates."""
    refusal_rate_alert: float = 0.5
    """Alert when at least this share of the window's answers are refusals."""
    empty_rate_alert: float = 0.5
    """Alert when at least this share of the window's answers are empty."""

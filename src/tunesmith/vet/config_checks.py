"""Range checks for a vetting filter's config block, run when the filter is built: every problem reported at once."""

from __future__ import annotations

from tunesmith.core.errors import ConfigError, Problem

Check = tuple[str, object, bool, str]
"""(field under `vet.`, value received, whether it is valid, what was expected)."""


def require(checks: list[Check]) -> None:
    problems = [
        Problem(f"vet.{name}", None, f"got {value!r}, expected {expected}")
        for name, value, ok, expected in checks
        if not ok
    ]
    if problems:
        raise ConfigError(problems)


def share(value: float, *, zero_ok: bool = True) -> bool:
    """A share in [0, 1] (or (0, 1] without `zero_ok`)."""
    low_ok = value >= 0.0 if zero_ok else value > 0.0
    return low_ok and value <= 1.0

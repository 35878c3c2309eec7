"""The one shape of a bound check: `need(ok, field, value, expected, hint)` adds a `Problem` when `ok` is false.

`validate_config` and every section's `*_problems` function collect their problems this way, so each message
reads "got <value>, expected <what>" and names the dotted field.
"""

from __future__ import annotations

from typing import Protocol

from tunesmith.core.errors import Problem


class Need(Protocol):
    def __call__(self, ok: bool, field: str, value: object, expected: str, hint: str | None = None) -> None: ...


def need_into(problems: list[Problem], section: str = "") -> Need:
    """A `need` that appends to `problems`, naming fields `<section>.<field>` (or `<field>` without a section)."""
    prefix = f"{section}." if section else ""

    def need(ok: bool, field: str, value: object, expected: str, hint: str | None = None) -> None:
        if not ok:
            problems.append(Problem(f"{prefix}{field}", None, f"got {value!r}, expected {expected}", hint))

    return need

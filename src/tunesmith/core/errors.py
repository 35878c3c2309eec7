"""Typed errors. Each names where the problem is and what to do about it.

The CLI turns any `TunesmithError` into a message and exit code 2, with no traceback unless --debug.
"""

from __future__ import annotations

from dataclasses import dataclass


class TunesmithError(Exception):
    """Base class for every error a user can fix by changing input, config or environment."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One problem found in the input: where, which field, what is wrong and how to fix it."""

    where: str  # "file.jsonl:12" or "train.learning_rate"
    field: str | None
    message: str
    hint: str | None = None

    def render(self) -> str:
        field = f" [{self.field}]" if self.field else ""
        hint = f"\n    fix: {self.hint}" if self.hint else ""
        return f"  {self.where}{field}: {self.message}{hint}"


class ProblemsError(TunesmithError):
    """Several problems reported at once, so the user fixes them in one pass."""

    title = "problems found"

    def __init__(self, problems: list[Problem], title: str | None = None, max_shown: int = 50):
        self.problems = list(problems)
        self.title = title or self.title
        shown = "\n".join(p.render() for p in self.problems[:max_shown])
        more = len(self.problems) - max_shown
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{self.title} ({len(self.problems)}):\n{shown}{tail}")


class ConfigError(ProblemsError):
    """The run configuration has one or more invalid fields."""

    title = "invalid configuration"


class DataError(ProblemsError):
    """A data file has one or more bad records."""

    title = "invalid data"


class ModelLoadError(TunesmithError):
    """A model or tokenizer could not be found or loaded."""


class DependencyError(TunesmithError):
    """An optional dependency or hardware feature a chosen option needs is missing."""


class CheckpointError(TunesmithError):
    """A checkpoint is missing, incomplete or does not match the run."""


class EvaluationError(TunesmithError, ValueError):
    """An evaluation cannot be scored as asked: no test records, an unknown label, mismatched inputs.

    Also a ValueError, so callers that guarded the evaluation's input checks with ValueError keep working.
    """


class UnsafeFileError(TunesmithError):
    """A file was refused because using it could run code or write outside its folder."""


class PickleFileError(UnsafeFileError, ModelLoadError, CheckpointError):
    """A pickle (.bin, .pt, .pth, .ckpt, .pkl) where tunesmith expects safetensors: refused, never unpickled.

    Also a ModelLoadError and a CheckpointError, so callers that handle a failed model or checkpoint load
    handle this too.
    """


class UnsafeArchiveError(UnsafeFileError):
    """An archive holds a member with an absolute or `../` path, a link or a device: nothing is extracted."""

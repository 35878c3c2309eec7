"""Load a run config: defaults < YAML file < dotted overrides, with every problem reported at once.

    cfg = load_config("run.yaml", ["--train.learning_rate=2e-4", "adapter.r=8"])

Types come from the schema's annotations; a wrong value names the field, the value and the expected form.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from tunesmith.config.privacy_schema import resolve_strategy
from tunesmith.config.schema import Config
from tunesmith.config.validate import validate_config
from tunesmith.core.digest import canonical_hash
from tunesmith.core.errors import ConfigError, Problem

_MISSING = object()


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Build a `Config` from an optional YAML file and `section.field=value` overrides."""
    problems: list[Problem] = []
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_yaml(Path(path), problems)
    for override in overrides or []:
        _apply_override(raw, override, problems)
    return _validated(_build(Config, raw, "", problems), problems)


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a `Config` from a plain dict (as `config_to_dict` or a config.yaml gives it)."""
    problems: list[Problem] = []
    return _validated(_build(Config, raw, "", problems), problems)


def _validated(cfg: Config, problems: list[Problem]) -> Config:
    """`cfg` with implied settings resolved and every rule checked; `problems` (from reading it) fail it too."""
    resolve_strategy(cfg.privacy, cfg.train)  # a DP budget on a plain run switches it to dp
    # fields with a wrong type were left at their defaults, so the range rules still check the rest
    problems.extend(validate_config(cfg))
    if problems:
        raise ConfigError(problems)
    return cfg


def _read_yaml(path: Path, problems: list[Problem]) -> dict[str, Any]:
    if not path.is_file():
        problems.append(Problem(str(path), None, "config file not found", "run `tunesmith init run.yaml`"))
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problems.append(Problem(where, None, f"not valid YAML: {getattr(exc, 'problem', exc)}", None))
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(Problem(str(path), None, "top level must be a mapping of sections", "see `tunesmith init`"))
        return {}
    return data


def _apply_override(raw: dict[str, Any], override: str, problems: list[Problem]) -> None:
    text = override[2:] if override.startswith("--") else override
    key, sep, value = text.partition("=")
    if not sep or "." not in key:
        problems.append(Problem(override, None, "override must look like --section.field=value", None))
        return
    *sections, name = key.split(".")
    target = raw
    for depth, section in enumerate(sections):
        target = target.setdefault(section, {})
        if not isinstance(target, dict):
            where = ".".join(sections[: depth + 1])
            problems.append(Problem(where, None, "section must be a mapping", None))
            return
    try:
        target[name] = yaml.safe_load(value) if value != "" else None
    except yaml.YAMLError:
        target[name] = value


def _build(cls: type, raw: Any, prefix: str, problems: list[Problem]) -> Any:
    where = prefix.rstrip(".") or "config"
    if not isinstance(raw, dict):
        problems.append(Problem(where, None, f"expected a mapping, got {raw!r}", None))
        raw = {}
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"did you mean {prefix}{close[0]}?" if close else f"known: {', '.join(known)}"
            problems.append(Problem(f"{prefix}{key}", None, "unknown field", hint))
    values = {}
    for name in known:
        if name not in raw:
            continue
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, raw[name], f"{prefix}{name}.", problems)  # type: ignore[arg-type]
            continue
        coerced = _coerce(raw[name], tp)
        if coerced is _MISSING:
            problems.append(Problem(f"{prefix}{name}", None, f"got {raw[name]!r}, expected {_describe(tp)}", None))
        else:
            values[name] = coerced
    return cls(**values)


def _coerce(value: Any, tp: Any) -> Any:
    """Return `value` converted to type `tp`, or _MISSING when it does not fit."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None) and (out := _coerce(value, arg)) is not _MISSING:
                return out
        return _MISSING
    if origin is Literal:
        return value if value in args else _MISSING
    if tp is Any:
        return value
    if origin is dict:  # a mapping with string keys (e.g. `search.space`)
        if not isinstance(value, dict):
            return _MISSING
        entries = {str(k): _coerce(v, args[1]) for k, v in value.items()}
        return _MISSING if any(v is _MISSING for v in entries.values()) else entries
    if origin is list:
        if not isinstance(value, list):
            value = [value] if isinstance(value, str) else value
        if not isinstance(value, list):
            return _MISSING
        items = [_coerce(v, args[0]) for v in value]
        return _MISSING if any(i is _MISSING for i in items) else items
    if tp is bool:
        return value if isinstance(value, bool) else _MISSING
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISSING
    if tp is float:
        return _to_float(value)
    if tp is str:  # a bare number is a fine name or path (`run_id: 123`)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value if isinstance(value, str) else _MISSING
    return _MISSING


def _to_float(value: Any) -> Any:
    # YAML 1.1 reads "2e-4" as a string; accept any numeral a user would write
    if isinstance(value, bool):
        return _MISSING
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return _MISSING
    return _MISSING


def _describe(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0])}"
    if origin is dict:
        return "a mapping"
    return {type(None): "null", bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, str(tp)
    )


def config_to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_hash(cfg: Config) -> str:
    """Stable short hash of everything that changes what a run computes (run folder naming excluded)."""
    data = config_to_dict(cfg)
    data["run"] = {"seed": data["run"]["seed"]}
    data.pop("track", None)  # where a run is mirrored does not change what it computes
    return canonical_hash(data)[:8]


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)

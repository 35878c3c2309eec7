"""The new-run form, generated from the config dataclasses, and its two-way YAML view.

Every field of `Config` (nested blocks included) becomes one input named by its dotted path (`train.epochs`), with
its docstring as help text, so a field added to the schema appears in the form with no UI change. A submitted form
becomes the raw mapping the CLI's loader reads from YAML; the YAML view is that mapping dumped with only the fields
that differ from the defaults, and `load_config` on it gives the same `Config` as the form (tested both ways).

Value conventions, the same as the CLI's dotted overrides: text fields are parsed as YAML scalars (`1e-3`,
`[a, b]`, `null`); an empty text field is `null`; plain string fields are taken verbatim.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from tunesmith.config import Config, config_to_dict, load_config
from tunesmith.config.docs import class_doc, field_docs


@dataclass(frozen=True)
class FormField:
    """One input of the form."""

    name: str
    """Dotted path, e.g. `train.learning_rate`."""
    kind: Literal["bool", "choice", "text"]
    doc: str
    default: Any
    choices: tuple[Any, ...] = ()
    optional: bool = False
    verbatim: bool = False
    """A plain string field: the text is the value, not parsed as YAML."""
    type_name: str = ""


@dataclass(frozen=True)
class FormSection:
    """A config block (`train`) or a nested block (`vet.pii`) and its fields."""

    name: str
    doc: str
    fields: tuple[FormField, ...]
    depth: int


@functools.cache
def form_sections() -> tuple[FormSection, ...]:
    """Every config block in schema order, nested blocks right after their parent."""
    sections: list[FormSection] = []
    hints = typing.get_type_hints(Config)
    for section in dataclasses.fields(Config):
        _collect(hints[section.name], section.name, 0, sections)
    return tuple(sections)


def _collect(cls: type, prefix: str, depth: int, out: list[FormSection]) -> None:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    defaults = cls()
    own: list[FormField] = []
    nested: list[tuple[type, str]] = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            nested.append((tp, f"{prefix}.{f.name}"))  # type: ignore[arg-type]
            continue
        own.append(_make_field(f"{prefix}.{f.name}", tp, docs.get(f.name, ""), getattr(defaults, f.name)))
    out.append(FormSection(prefix, class_doc(cls), tuple(own), depth))
    for tp, name in nested:
        _collect(tp, name, depth + 1, out)


def _make_field(name: str, tp: Any, doc: str, default: Any) -> FormField:
    inner, optional = _strip_optional(tp)
    if inner is bool and optional:  # three states (e.g. null = decided by another field): a choice
        return FormField(name, "choice", doc, default, choices=(True, False), optional=True, type_name="choice")
    if inner is bool:
        return FormField(name, "bool", doc, default, type_name="true/false")
    if get_origin(inner) is Literal:
        return FormField(name, "choice", doc, default, choices=get_args(inner), optional=optional,
                         type_name="choice")
    return FormField(name, "text", doc, default, optional=optional, verbatim=inner is str,
                     type_name=_type_name(inner) + (" or empty" if optional else ""))


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(get_args(tp))
        return tp, type(None) in get_args(tp)
    return tp, False


def _type_name(tp: Any) -> str:
    if get_origin(tp) is list:
        return f"list of {_type_name(get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def all_fields() -> list[FormField]:
    return [f for s in form_sections() for f in s.fields]


def flat_values(cfg: Config) -> dict[str, Any]:
    """Dotted name -> value for every field of `cfg`."""
    out: dict[str, Any] = {}
    leaves = {f.name for f in all_fields()}  # a dict-valued field is a value, not a block

    def walk(value: Any, prefix: str) -> None:
        for key, inner in value.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(inner, dict) and name not in leaves:
                walk(inner, name)
            else:
                out[name] = inner

    walk(config_to_dict(cfg), "")
    return out


def display_value(field: FormField, value: Any) -> str:
    """The text an input shows for `value` (what `parse_value` turns back into the same value)."""
    if field.kind == "bool":
        return "true" if value else "false"
    if value is None:
        return ""
    if field.verbatim or field.kind == "choice":
        return str(value)
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def parse_value(field: FormField, text: str) -> Any:
    """The value a submitted input means (YAML errors are left to the loader: it names the field)."""
    # browsers send a textarea's line breaks as CRLF
    text = text.replace("\r\n", "\n") if field.verbatim else text.strip()
    if field.kind == "bool":
        return text.lower() in ("true", "on", "1", "yes")
    if text == "" and (field.optional or not field.verbatim):
        return None
    if field.verbatim:
        return text
    if field.kind == "choice" and text in {str(c) for c in field.choices}:
        return next(c for c in field.choices if str(c) == text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def form_to_raw(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """A submitted form (name, value pairs; the last value of a name wins, as with checkbox + hidden input) ->
    the nested mapping of the fields that differ from the defaults (what the YAML view shows)."""
    fields = {f.name: f for f in all_fields()}
    submitted = {name: value for name, value in pairs if name in fields}
    return _changes({name: parse_value(fields[name], text) for name, text in submitted.items()})


def _changes(values: Mapping[str, Any]) -> dict[str, Any]:
    """The nested mapping of the dotted `values` that differ from the defaults."""
    defaults = flat_values(Config())
    raw: dict[str, Any] = {}
    for name, value in values.items():
        if value != defaults.get(name):
            _set(raw, name, value)
    return raw


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *sections, key = dotted.split(".")
    target = raw
    for section in sections:
        target = target.setdefault(section, {})
    target[key] = value


def raw_to_yaml(raw: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(raw), sort_keys=False, allow_unicode=True) if raw else "{}\n"


def config_changes_yaml(cfg: Config) -> str:
    """`cfg` as YAML with only the fields that differ from the defaults."""
    return raw_to_yaml(_changes(flat_values(cfg)))


def load_yaml_text(text: str, overrides: list[str] | None = None) -> Config:
    """`load_config` on YAML text (the CLI's own loader, so the form accepts exactly what the CLI does)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(text, encoding="utf-8")
        return load_config(path, overrides)


def form_values(cfg: Config) -> dict[str, str]:
    """Dotted name -> the text each input shows for `cfg`."""
    fields = {f.name: f for f in all_fields()}
    return {name: display_value(fields[name], value) for name, value in flat_values(cfg).items() if name in fields}

"""The commented starter YAML written by `tunesmith init`, generated from the schema and its field docs."""

from __future__ import annotations

import dataclasses
import textwrap
import typing

import yaml

from tunesmith.config.docs import class_doc, field_docs
from tunesmith.config.schema import Config


def render_template() -> str:
    """A YAML file with every field at its default, each preceded by its documentation as a comment."""
    lines = ["# tunesmith run configuration. Every field is optional; shown at its default.", ""]
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        lines.append(f"# {class_doc(cls)}")
        lines.append(f"{section.name}:")
        lines.extend(_render_block(cls, "  "))
        lines.append("")
    return "\n".join(lines)


def _render_block(cls: type, indent: str) -> list[str]:
    """The fields of one dataclass at `indent`; nested blocks (e.g. `vet.pii`) become nested mappings."""
    lines: list[str] = []
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            lines.append(f"{indent}# {class_doc(hints[f.name])}")
            lines.append(f"{indent}{f.name}:")
            lines.extend(_render_block(hints[f.name], indent + "  "))
            continue
        for doc_line in textwrap.wrap(docs.get(f.name, ""), 100):
            lines.append(f"{indent}# {doc_line}")
        default = getattr(cls(), f.name)
        if isinstance(default, dict) and default:  # a mapping (e.g. `search.space`): one entry a line
            block = yaml.safe_dump({f.name: default}, default_flow_style=None, sort_keys=False, width=1000)
            lines.extend(f"{indent}{line}" for line in block.splitlines())
            continue
        value = yaml.safe_dump({f.name: default}, default_flow_style=True, width=1000).strip()[1:-1]
        lines.append(f"{indent}{value}")
    return lines


def field_help() -> list[tuple[str, str, str]]:
    """(dotted name, default, doc) for every field: the body of `tunesmith train --help`."""
    rows: list[tuple[str, str, str]] = []
    for section in dataclasses.fields(Config):
        rows.extend(_block_help(typing.get_type_hints(Config)[section.name], section.name))
    return rows


def _block_help(cls: type, prefix: str) -> list[tuple[str, str, str]]:
    rows = []
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            rows.extend(_block_help(hints[f.name], f"{prefix}.{f.name}"))
        else:
            rows.append((f"{prefix}.{f.name}", repr(getattr(cls(), f.name)), docs.get(f.name, "")))
    return rows

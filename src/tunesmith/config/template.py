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
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            for doc_line in textwrap.wrap(docs.get(f.name, ""), 100):
                lines.append(f"  # {doc_line}")
            default = getattr(cls(), f.name)
            value = yaml.safe_dump({f.name: default}, default_flow_style=True, width=1000).strip()[1:-1]
            lines.append(f"  {value}")
        lines.append("")
    return "\n".join(lines)


def field_help() -> list[tuple[str, str, str]]:
    """(dotted name, default, doc) for every field: the body of `tunesmith train --help`."""
    rows = []
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            rows.append((f"{section.name}.{f.name}", repr(getattr(cls(), f.name)), docs.get(f.name, "")))
    return rows

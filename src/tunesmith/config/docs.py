"""Field documentation read from the schema's source: the string literal under each dataclass field.

Keeping the docs as attribute docstrings (litgpt's style) means there is one place to write them; `--help`,
`tunesmith init` and error messages all read them from here.
"""

from __future__ import annotations

import ast
import functools
import inspect
import typing
from dataclasses import fields, is_dataclass


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Map each field of a dataclass to the docstring written under it."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for stmt, following in zip(body, body[1:], strict=False):
        is_field = isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
        is_doc = isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
        if is_field and is_doc and isinstance(following.value.value, str):  # type: ignore[union-attr]
            docs[stmt.target.id] = following.value.value.strip()  # type: ignore[union-attr]
    return docs


def class_doc(cls: type) -> str:
    return (inspect.getdoc(cls) or "").strip()


def missing_docs(cls: type) -> list[str]:
    """Fields of `cls` (recursively) without a docstring; the test suite keeps this empty."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    missing = []
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            missing.extend(missing_docs(hints[f.name]))
            continue
        if f.name not in docs:
            missing.append(f"{cls.__name__}.{f.name}")
    return missing

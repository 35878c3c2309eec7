"""Weights are read from safetensors only: a pickle where weights are expected is refused before anything reads it.

Unpickling runs whatever the file says (`__reduce__` may name any callable), so `torch.load` of an untrusted
`.bin`/`.pt` is code execution. Every place tunesmith reads weights (base-model folders, adapter folders, training
checkpoints) checks the files here first, by name and by content: a file is accepted as safetensors only when its
header parses as one (8-byte little-endian length, then a JSON object), so a pickle renamed to `.safetensors` is
caught too. These checks read a few bytes and never unpickle anything. Imports no torch.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path

from tunesmith.core.errors import PickleFileError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib")
"""File endings of pickle-based weight and state files (torch.save, HF `pytorch_model.bin`, joblib)."""
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format: a zip holding data.pkl
_MAX_HEADER = 100 << 20  # safetensors caps its JSON header at 100 MB

CONVERT_HINT = (
    "convert it to safetensors once, where you trust the file: `safetensors.torch.save_file(torch.load(path, "
    "weights_only=True), 'model.safetensors')`, or for a Hugging Face folder `AutoModelForCausalLM.from_pretrained"
    "(folder).save_pretrained(folder)`"
)


def looks_like_pickle(path: Path) -> bool:
    """True when the file starts like a pickle (protocol 2+) or a torch.save zip archive."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head.startswith(_ZIP_MAGIC) or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def is_safetensors(path: Path) -> bool:
    """True when the file's header parses as safetensors: a little-endian u64 length, then that many bytes of a
    JSON object (the tensors' names, dtypes and offsets)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(8)
            if len(raw) != 8:
                return False
            (length,) = struct.unpack("<Q", raw)
            if length < 2 or length > min(_MAX_HEADER, path.stat().st_size - 8):
                return False
            header = json.loads(handle.read(length))
    except (OSError, ValueError):
        return False
    return isinstance(header, dict)


def refuse_pickle(path: Path, what: str) -> PickleFileError:
    """The error for a pickle found at `path` where `what` should be safetensors."""
    return PickleFileError(
        f"{path} is a pickle file where {what} should be safetensors; tunesmith never loads pickle files, "
        f"because loading one can run arbitrary code. Nothing was read from it.\n  fix: {CONVERT_HINT}"
    )


def require_safetensors(path: Path, what: str) -> None:
    """Raise PickleFileError unless `path` is a safetensors file (a missing file is left to the caller)."""
    path = Path(path)
    if not path.is_file() or is_safetensors(path):
        return
    if looks_like_pickle(path) or path.suffix in PICKLE_SUFFIXES:
        raise refuse_pickle(path, what)
    raise PickleFileError(
        f"{path} is not a safetensors file (its header does not parse), so {what} cannot be read from it; "
        "tunesmith reads weights from safetensors only.\n  fix: re-create or re-download the file"
    )


def pickle_files(paths: Iterable[Path]) -> list[Path]:
    """The paths that are pickles by name or by content (safetensors-named files are checked by content)."""
    found = []
    for path in paths:
        if not path.is_file() or path.suffix == ".json" or is_safetensors(path):
            continue  # (a safetensors header length can start with the bytes a pickle starts with)
        if path.suffix in PICKLE_SUFFIXES or looks_like_pickle(path):
            found.append(path)
    return sorted(found)


def refuse_pickles_in(folder: Path, what: str) -> None:
    """Raise PickleFileError when `folder` (not recursive) holds any pickle: tunesmith's own folders never do, so
    one there was put there by someone else (e.g. a trainer's `optimizer.pt`)."""
    found = pickle_files(Path(folder).iterdir()) if Path(folder).is_dir() else []
    if found:
        names = ", ".join(p.name for p in found)
        raise PickleFileError(
            f"{folder} holds pickle files ({names}) where {what} should hold safetensors and JSON only; "
            "tunesmith never loads pickle files, because loading one can run arbitrary code. Nothing was read.\n"
            f"  fix: remove them, or {CONVERT_HINT}"
        )

"""The UI's workspace folder and every path the UI reads or writes inside it.

    <workspace>/
      runs/<run-id>/      the run folders, the same ones `tunesmith train` writes (run.output_dir = runs)
      data/               uploaded data files
      configs/*.yaml      presets offered on the new-run form (configs/demo.yaml of a checkout)

Every path that comes from a request (a run id, a data file name, an upload's name) goes through this module:
names are checked against a strict pattern and the resolved path must stay inside its folder, so no request can
read or write outside the workspace (`..`, absolute paths, symlinks pointing out are all refused).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

from tunesmith.core.errors import TunesmithError

RUNS_DIR = "runs"
DATA_DIR = "data"
PRESETS_DIRS = ("configs", "examples")
DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".parquet")
# a run id or file name: starts with a letter or digit, then letters, digits, `.`, `_`, `-`; never `..`
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class UnsafePathError(TunesmithError):
    """A name from a request that would leave its folder, or does not name an existing item."""


class UploadTooLargeError(TunesmithError):
    """An upload over the workspace's size limit (nothing of it is kept)."""


def check_name(name: str, what: str) -> str:
    """`name` when it is a plain file or folder name (no separators, no `..`); UnsafePathError otherwise."""
    if not _SAFE_NAME.match(name or "") or ".." in name:
        raise UnsafePathError(f"invalid {what} {name!r}: use letters, digits, '.', '_' and '-' only")
    return name


def sanitise_upload_name(filename: str) -> str:
    """A safe file name from a browser-supplied one: last path component, odd characters replaced."""
    base = re.split(r"[\\/]", filename or "")[-1].strip()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip("._-")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)[:120]
    if not cleaned or not cleaned.lower().endswith(DATA_SUFFIXES):
        raise UnsafePathError(f"upload {filename!r}: the name must end in one of {', '.join(DATA_SUFFIXES)}")
    return cleaned


class Workspace:
    """The folder the UI works in; `tunesmith ui --workspace DIR` (default: the current folder)."""

    def __init__(self, root: str | Path, max_upload_bytes: int = 200 * 1024 * 1024):
        self.root = Path(root).resolve()
        self.max_upload_bytes = max_upload_bytes

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIR

    @property
    def data_dir(self) -> Path:
        return self.root / DATA_DIR

    def ensure(self) -> None:
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def _inside(self, folder: Path, name: str, what: str) -> Path:
        path = (folder / check_name(name, what)).resolve()
        if path.parent != folder.resolve():  # a symlink that points elsewhere
            raise UnsafePathError(f"{what} {name!r} is not inside {folder.name}/")
        return path

    def run_path(self, run_id: str) -> Path:
        """The folder of an existing run in `runs/`; UnsafePathError for anything else."""
        path = self._inside(self.runs_dir, run_id, "run id")
        if not path.is_dir():
            raise UnsafePathError(f"no run {run_id!r} in {RUNS_DIR}/")
        return path

    def new_run_path(self, run_id: str) -> Path:
        path = self._inside(self.runs_dir, run_id, "run id")
        if path.exists():
            raise UnsafePathError(f"run {run_id!r} exists already; choose another run id")
        return path

    def data_file(self, name: str) -> Path:
        """An existing file in `data/`."""
        path = self._inside(self.data_dir, name, "data file")
        if not path.is_file():
            raise UnsafePathError(f"no data file {name!r} in {DATA_DIR}/")
        return path

    def data_files(self) -> list[str]:
        if not self.data_dir.is_dir():
            return []
        return sorted(p.name for p in self.data_dir.iterdir() if p.is_file() and p.name.endswith(DATA_SUFFIXES))

    def presets(self) -> dict[str, Path]:
        """`<folder>/<name>.yaml` for the YAML files in the workspace's configs/ and examples/ folders."""
        found: dict[str, Path] = {}
        for folder in PRESETS_DIRS:
            base = self.root / folder
            if base.is_dir():
                for path in sorted(base.glob("*.yaml")):
                    if _SAFE_NAME.match(path.name):
                        found[f"{folder}/{path.name}"] = path
        return found

    async def save_upload(self, filename: str, chunks: AsyncIterator[bytes]) -> Path:
        """Stream an upload into `data/<sanitised name>`; over `max_upload_bytes` nothing is kept."""
        self.ensure()
        name = sanitise_upload_name(filename)
        target = self._inside(self.data_dir, name, "data file")
        partial = target.with_name(f".{name}.part")
        size = 0
        try:
            with open(partial, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_upload_bytes:
                        raise UploadTooLargeError(
                            f"upload over the limit of {self.max_upload_bytes // (1024 * 1024)} MiB "
                            f"({self.max_upload_bytes} bytes); start the UI with a larger --max-upload-mb"
                        )
                    out.write(chunk)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target

"""Archive reading that cannot write outside its folder: one check for every tar and zip member tunesmith touches.

A member is refused (UnsafeArchiveError, naming it) when its path is absolute, has a drive (`C:`), climbs with
`..` (also written with backslashes), is empty, or when it is anything but a regular file or a folder: symlinks,
hard links, character and block devices, FIFOs. `safe_extract` checks every member before it writes anything, so
a refused archive leaves nothing behind, and it writes each file itself (never `extractall`) under the target,
without the archive's owner or setuid bits. `check_tar_member` serves readers that stream single members without
extracting (the bundled demo data).

    safe_extract("data.tar.gz", "out/")          # or a .zip; returns the files written
    check_tar_member(member, archive_path)       # raises on an unsafe member
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from tunesmith.core.errors import UnsafeArchiveError

_CHUNK = 1 << 20


def _refuse(archive: Path | str, name: str, why: str, fix: str | None) -> UnsafeArchiveError:
    hint = f"\n  fix: {fix}" if fix else "\n  fix: use an archive from a source you trust; nothing was extracted"
    return UnsafeArchiveError(f"{archive}: refusing archive member {name!r} ({why}){hint}")


def member_path(name: str, archive: Path | str, fix: str | None = None) -> PurePosixPath:
    """The member's path relative to the extraction folder; refuses absolute, drive, `..` and empty paths."""
    path = PurePosixPath(name.replace("\\", "/"))
    parts = [p for p in path.parts if p not in ("", ".")]
    if path.is_absolute() or name.startswith(("/", "\\")):
        raise _refuse(archive, name, "absolute path", fix)
    if parts and ":" in parts[0]:
        raise _refuse(archive, name, "drive or device path", fix)
    if ".." in parts:
        raise _refuse(archive, name, "path climbs out of the folder with '..'", fix)
    if not parts:
        raise _refuse(archive, name, "empty path", fix)
    return PurePosixPath(*parts)


def check_tar_member(member: tarfile.TarInfo, archive: Path | str, fix: str | None = None) -> PurePosixPath:
    """The member's safe relative path; raises UnsafeArchiveError for links, devices, FIFOs and unsafe paths."""
    path = member_path(member.name, archive, fix)
    if member.issym() or member.islnk():
        raise _refuse(archive, member.name, f"a {'symbolic' if member.issym() else 'hard'} link to "
                      f"{member.linkname!r}", fix)
    if not (member.isfile() or member.isdir()):
        raise _refuse(archive, member.name, "a device, FIFO or other special file", fix)
    return path


def check_zip_member(info: zipfile.ZipInfo, archive: Path | str, fix: str | None = None) -> PurePosixPath:
    """The member's safe relative path; raises UnsafeArchiveError for symlinks, special files and unsafe paths."""
    path = member_path(info.filename, archive, fix)
    mode = info.external_attr >> 16  # the unix mode, when the archive was made on unix (file type bits may be 0)
    if stat.S_ISLNK(mode):
        raise _refuse(archive, info.filename, "a symbolic link", fix)
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise _refuse(archive, info.filename, "a device, FIFO or other special file", fix)
    return path


def safe_extract(archive: str | Path, target: str | Path, max_bytes: int | None = None) -> list[Path]:
    """Extract a tar (any compression) or zip archive into `target`; returns the files written.

    Every member is checked first; `max_bytes` bounds the total uncompressed size (a decompression bomb is
    refused before anything is written).
    """
    archive, target = Path(archive), Path(target)
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, target, max_bytes)
    if tarfile.is_tarfile(archive):
        return _extract_tar(archive, target, max_bytes)
    raise UnsafeArchiveError(f"{archive}: not a tar or zip archive; nothing was extracted")


def _destination(target: Path, relative: PurePosixPath, archive: Path) -> Path:
    """`target / relative`, refused if it resolves outside `target` (a symlink already in `target`, say)."""
    root = target.resolve()
    where = (root / relative).resolve()
    if where != root and root not in where.parents:
        raise _refuse(archive, str(relative), "it would land outside the target folder", None)
    return where


def _make_room(where: Path, is_dir: bool) -> Path | None:
    """Create a folder member (returns None) or a file member's parent folders (returns where the file goes)."""
    if is_dir:
        where.mkdir(parents=True, exist_ok=True)
        return None
    where.parent.mkdir(parents=True, exist_ok=True)
    return where


@contextmanager
def _undo_on_refusal(written: list[Path]) -> Iterator[None]:
    """Delete the files already written when a member is refused mid-way (a zip member larger than it declares),
    so a refused archive still leaves no file behind."""
    try:
        yield
    except UnsafeArchiveError:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _check_size(archive: Path, total: int, max_bytes: int | None) -> None:
    if max_bytes is not None and total > max_bytes:
        raise UnsafeArchiveError(f"{archive}: {total:,} bytes uncompressed, over the limit of {max_bytes:,}; "
                                 "nothing was extracted")


def _extract_tar(archive: Path, target: Path, max_bytes: int | None) -> list[Path]:
    with tarfile.open(archive) as tar:
        # every destination is checked before the first write (the archive holds no links, so none can move)
        plan = [(m, _destination(target, check_tar_member(m, archive), archive)) for m in tar.getmembers()]
        _check_size(archive, sum(m.size for m, _ in plan if m.isfile()), max_bytes)
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for member, destination in plan:
            where = _make_room(destination, member.isdir())
            source = tar.extractfile(member) if where is not None else None
            if where is None or source is None:
                continue
            with source, open(where, "wb") as sink:
                shutil.copyfileobj(source, sink, _CHUNK)
            where.chmod(0o755 if member.mode & 0o111 else 0o644)
            written.append(where)
    return written


def _extract_zip(archive: Path, target: Path, max_bytes: int | None) -> list[Path]:
    with zipfile.ZipFile(archive) as zf:
        plan = [(info, _destination(target, check_zip_member(info, archive), archive)) for info in zf.infolist()]
        _check_size(archive, sum(info.file_size for info, _ in plan), max_bytes)
        target.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        with _undo_on_refusal(written):
            for info, destination in plan:
                where = _make_room(destination, info.is_dir())
                if where is None:
                    continue
                written.append(where)  # before writing: a refused member's partial file is removed too
                _copy_declared(zf, info, where, archive)
    return written


def _copy_declared(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: Path, archive: Path) -> None:
    """Copy one zip member, refusing it when it inflates past its declared size (a lying header)."""
    budget = info.file_size
    with zf.open(info) as source, open(where, "wb") as sink:
        while chunk := source.read(_CHUNK):
            budget -= len(chunk)
            if budget < 0:
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is larger than it declares")
            sink.write(chunk)

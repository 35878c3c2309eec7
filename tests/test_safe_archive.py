"""Archive extraction refuses `../`, absolute paths, drives, links and devices, and writes nothing when it does."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from tunesmith.core.errors import UnsafeArchiveError
from tunesmith.core.safe_archive import check_tar_member, safe_extract


def _tar(path: Path, *members: tarfile.TarInfo, payload: bytes = b"data") -> Path:
    with tarfile.open(path, "w:gz") as archive:
        good = tarfile.TarInfo("pkg/ok.txt")
        good.size = len(payload)
        archive.addfile(good, io.BytesIO(payload))  # a harmless member first: it must not be written either
        for member in members:
            archive.addfile(member, io.BytesIO(payload) if member.isfile() else None)
    return path


def _file(name: str, size: int = 4) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_file("../escaped.txt"), "'..'"),
        (_file("pkg/../../escaped.txt"), "'..'"),
        (_file("/tmp/escaped-absolute.txt"), "absolute path"),
        (_file("..\\escaped.txt"), "'..'"),
        (_file("C:/escaped.txt"), "drive"),
        (_special("pkg/link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (_special("pkg/hard", tarfile.LNKTYPE, "pkg/ok.txt"), "hard link"),
        (_special("pkg/tty", tarfile.CHRTYPE), "device"),
        (_special("pkg/disk", tarfile.BLKTYPE), "device"),
        (_special("pkg/pipe", tarfile.FIFOTYPE), "device"),
    ],
)
def test_unsafe_tar_members_are_refused_before_anything_is_written(tmp_path, member, reason):
    archive = _tar(tmp_path / "evil.tar.gz", member)
    target = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeArchiveError, match=reason) as info:
        safe_extract(archive, target)
    assert "refusing archive member" in str(info.value)
    assert not target.exists(), "a refused archive leaves nothing behind"
    assert not (tmp_path / "deep" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def _zip(path: Path, name: str, mode: int | None = None, data: bytes = b"data") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/ok.txt", b"fine")
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        archive.writestr(info, data)
    return path


@pytest.mark.parametrize(
    ("name", "mode", "reason"),
    [
        ("../escaped.txt", None, "'..'"),
        ("/escaped-absolute.txt", None, "absolute path"),
        ("..\\..\\escaped.txt", None, "'..'"),
        ("C:\\escaped.txt", None, "drive"),
        ("pkg/link", stat.S_IFLNK | 0o777, "symbolic link"),
        ("pkg/pipe", stat.S_IFIFO | 0o644, "device"),
    ],
)
def test_unsafe_zip_members_are_refused_before_anything_is_written(tmp_path, name, mode, reason):
    archive = _zip(tmp_path / "evil.zip", name, mode, data=b"/etc/passwd")
    target = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeArchiveError, match=reason):
        safe_extract(archive, target)
    assert not target.exists()
    assert not (tmp_path / "deep" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_safe_archives_extract_their_files_exactly(tmp_path):
    with tarfile.open(tmp_path / "good.tar.gz", "w:gz") as archive:
        for name, data in (("pkg/a.txt", b"alpha"), ("pkg/sub/b.bin", bytes(range(256)))):
            info = _file(name, len(data))
            archive.addfile(info, io.BytesIO(data))
    written = safe_extract(tmp_path / "good.tar.gz", tmp_path / "t")
    assert sorted(p.relative_to((tmp_path / "t").resolve()).as_posix() for p in written) == ["pkg/a.txt",
                                                                                             "pkg/sub/b.bin"]
    assert (tmp_path / "t" / "pkg" / "sub" / "b.bin").read_bytes() == bytes(range(256))
    zipped = _zip(tmp_path / "good.zip", "pkg/x/y.txt", stat.S_IFREG | 0o644, data=b"why")
    safe_extract(zipped, tmp_path / "z")
    assert (tmp_path / "z" / "pkg" / "x" / "y.txt").read_bytes() == b"why"


def test_size_limit_and_symlinked_target_folder_are_refused(tmp_path):
    archive = _tar(tmp_path / "big.tar.gz", _file("pkg/big.txt", 4))
    with pytest.raises(UnsafeArchiveError, match="over the limit"):
        safe_extract(archive, tmp_path / "out", max_bytes=6)
    assert not (tmp_path / "out").exists()
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "pkg").symlink_to(outside)  # a link planted in the target before extraction
    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        safe_extract(archive, target)
    assert list(outside.iterdir()) == []


def test_streaming_readers_use_the_same_member_check(tmp_path):
    link = _special("bigbench-1.0.0/x/task.json", tarfile.SYMTYPE, "../../secret")
    with pytest.raises(UnsafeArchiveError, match="fix: get it again"):
        check_tar_member(link, tmp_path / "a.tar.gz", fix="get it again")
    assert str(check_tar_member(_file("./pkg//a.txt"), "a.tar")) == "pkg/a.txt"


def test_a_link_in_the_target_met_by_a_later_member_is_refused_before_the_first_write(tmp_path):
    archive = _tar(tmp_path / "later.tar.gz", _file("later/escaped.txt"))  # pkg/ok.txt comes first
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "later").symlink_to(outside)
    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        safe_extract(archive, target)
    assert list(outside.iterdir()) == []
    assert not (target / "pkg").exists(), "the harmless first member is not written either"

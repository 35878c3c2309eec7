"""The vetting stage: `tunesmith vet cfg.yaml` on its own, and the hook the training pipeline runs by default.

    tunesmith vet configs/demo.yaml --dry-run          # report only
    tunesmith vet configs/demo.yaml --vet.pii.action=pseudonymize

Writes `kept.jsonl`, `quarantine.jsonl` and `vet_report.json` into `<run>/vet/` (pipeline) or `--out`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.config import Config
from tunesmith.core.records import Record

VET_SUBDIR = "vet"


@dataclass
class VetStage:
    """The `prepare` hook of `data.load.load_splits`: vets the train-file records and remembers the result."""

    cfg: Config
    out: Any
    dry_run: bool = False
    result: Any = None
    context_extras: dict[str, Any] = field(default_factory=dict)

    def __call__(self, records: list[Record], eval_records: list[Record]) -> list[Record]:
        from tunesmith.vet.runner import read_allow_list, vet_records

        allow = read_allow_list(self.cfg.vet.allow_list) if self.cfg.vet.allow_list else set()
        with self.out.status("vetting the data ...") as status:

            def progress(name: str, index: int, total: int) -> None:
                status.update(f"vetting the data: {name} ({index + 1}/{total})")

            self.result = vet_records(
                records, self.cfg.vet, self.cfg.run.seed, eval_records, allow, progress, self.context_extras
            )
        return records if self.dry_run else self.result.kept

    def needs_model(self) -> bool:
        """The perplexity check of the `outliers` filter scores records with the base model."""
        return self.cfg.vet.outliers.enabled and self.cfg.vet.outliers.perplexity

    def use_model(self, model: Any, tokenizer: Any) -> None:
        from tunesmith.vet.perplexity import causal_lm_scorer

        self.context_extras["model_scorer"] = causal_lm_scorer(model, tokenizer)

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write the three files and print the summary table."""
        from tunesmith.vet.artifacts import print_vet_summary, write_vet_outputs

        paths = write_vet_outputs(self.result, out_dir, self.dry_run)
        print_vet_summary(self.result.report, self.out, paths)
        return paths


def vet_data(cfg: Config, out_dir: Path | None = None, dry_run: bool = False) -> dict[str, Path]:
    """Load the configured data, vet it and write the results; returns the written files."""
    from tunesmith.data.bundled import resolve_data_source
    from tunesmith.data.load import file_sha256, load_records
    from tunesmith.recipes.common import console

    train_path = resolve_data_source(cfg.data.train_file)
    records, _, _ = load_records(train_path, cfg.data.format, cfg.data.max_records)
    eval_records: list[Record] = []
    if cfg.data.eval_file:
        eval_records, _, _ = load_records(resolve_data_source(cfg.data.eval_file), cfg.data.format)
    stage = VetStage(cfg, console(), dry_run)
    if stage.needs_model():
        from tunesmith.recipes.common import setup_runtime
        from tunesmith.recipes.finetune import load_base_model

        device, _ = setup_runtime(cfg)
        stage.use_model(*load_base_model(cfg, device))
    stage(records, eval_records)
    if out_dir is None:
        from tunesmith.config import config_hash

        out_dir = Path(cfg.run.output_dir) / f"vet-{file_sha256(train_path)[:8]}-{config_hash(cfg)}"
    return stage.write(out_dir)

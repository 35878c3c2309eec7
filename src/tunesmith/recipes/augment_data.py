"""The augmentation stage: `tunesmith augment cfg.yaml` on its own, and the step the training pipeline runs when
`augment.enabled` is true (after the split, on the training split only).

    tunesmith augment configs/demo.yaml --out runs/augmented
    tunesmith augment configs/demo.yaml --augment.multiplier=4 --augment.char_noise.enabled=true

Writes `augmented.jsonl` (the new records only, in the data's own format), `augment_provenance.jsonl` (line for
line: augmenter, parent id, parent file:line, seed) and `augment_report.json` (targets, what each augmenter
made, every drop by reason with examples) into `<run>/augment/` (pipeline) or `--out`.

The stand-alone verb loads, vets (when `vet.enabled`) and splits the data exactly as `tunesmith train` does,
then augments the training split: the records it writes are the ones training with `augment.enabled` would add,
and none of them comes from a validation or test record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.config import Config
from tunesmith.core.records import Record

AUGMENT_SUBDIR = "augment"
AUGMENTED_FILE = "augmented.jsonl"
PROVENANCE_FILE = "augment_provenance.jsonl"
REPORT_FILE = "augment_report.json"
LLM_AUGMENTERS = ("back_translation", "paraphrase", "synthetic")


@dataclass
class AugmentStage:
    """Augments a training split (call it), then writes and prints the result (`write`)."""

    cfg: Config
    out: Any
    result: Any = None

    def __call__(self, train: list[Record], heldout: list[Record]) -> list[Record]:
        """The augmented records for `train` (tagged; to be appended to the training split only)."""
        from tunesmith.augment.progress import RichProgress
        from tunesmith.augment.runner import augment_records

        if any(getattr(self.cfg.augment, name).enabled for name in LLM_AUGMENTERS):
            from tunesmith.recipes.common import quiet_libraries

            quiet_libraries()
        vet = self.cfg.vet if self.cfg.vet.enabled else None
        progress = RichProgress(self.out)
        self.result = augment_records(
            train, self.cfg.augment, self.cfg.run.seed, heldout, self.cfg.model, vet, progress
        )
        return list(self.result.records)

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write the three files and print the summary table."""
        from tunesmith.core.durable import atomic_write_text
        from tunesmith.data.rows import write_records_jsonl

        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {
            "augmented": write_records_jsonl(out_dir / AUGMENTED_FILE, self.result.records),
            "provenance": out_dir / PROVENANCE_FILE,
            "report": out_dir / REPORT_FILE,
        }
        lines = [json.dumps(row.to_dict(), ensure_ascii=False) for row in self.result.provenance]
        atomic_write_text(paths["provenance"], "\n".join(lines) + ("\n" if lines else ""))
        atomic_write_text(paths["report"], json.dumps(self.result.report, indent=2, ensure_ascii=False) + "\n")
        print_augment_summary(self.result.report, self.out, paths)
        return paths


def print_augment_summary(report: dict[str, Any], out: Any, paths: dict[str, Path] | None = None) -> None:
    """A rich table per augmenter (jobs, accepted, surplus, drops by reason), then the totals."""
    from rich.table import Table

    table = Table(title="data augmentation")
    for column in ("augmenter", "jobs", "unchanged", "accepted", "surplus", "dropped"):
        table.add_column(column, justify="left" if column in ("augmenter", "dropped") else "right")
    for name, figures in report["augmenters"].items():
        dropped = ", ".join(f"{reason} {count}" for reason, count in sorted(figures["dropped"].items())) or "-"
        table.add_row(name, *(str(figures[k]) for k in ("jobs", "unchanged", "accepted", "surplus")), dropped)
    out.print(table)
    target = f" of {report['planned']} planned" if report["planned"] is not None else ""
    out.print(
        f"{report['records_in']} training records in, {report['added']} augmented records added{target} "
        f"-> {report['records_out']} ({report['seconds']:.1f}s, {report['jobs_per_s']} jobs/s)"
    )
    if paths:
        out.print("  ".join(f"{name}: {path}" for name, path in paths.items()))


def augment_data(cfg: Config, out_dir: Path | None = None) -> dict[str, Path]:
    """Load, vet and split the configured data as training does, augment the training split, write the files."""
    from tunesmith.data.bundled import resolve_data_source
    from tunesmith.data.load import file_sha256, load_splits
    from tunesmith.recipes.common import console
    from tunesmith.recipes.vet_data import VET_SUBDIR, VetStage

    out = console()
    if out_dir is None:
        from tunesmith.config import config_hash

        data_hash = file_sha256(resolve_data_source(cfg.data.train_file))[:8]
        out_dir = Path(cfg.run.output_dir) / f"augment-{data_hash}-{config_hash(cfg)}"
    vet_stage = VetStage(cfg, out) if cfg.vet.enabled else None
    splits, _ = load_splits(cfg.data, cfg.run.seed, prepare=vet_stage)
    if vet_stage is not None:
        vet_stage.write(out_dir / VET_SUBDIR)
    out.print(f"splits {splits.counts()}: augmenting the {len(splits.train)} training records")
    stage = AugmentStage(cfg, out)
    stage(splits.train, splits.val + splits.test)
    return stage.write(out_dir)

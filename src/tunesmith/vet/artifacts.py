"""Write a vetting result: `kept.jsonl` (what training uses), `quarantine.jsonl`, `vet_report.json`; print it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.core.durable import atomic_write_text
from tunesmith.data.rows import write_records_jsonl
from tunesmith.vet.runner import VetResult

KEPT_FILE = "kept.jsonl"
QUARANTINE_FILE = "quarantine.jsonl"
REPORT_FILE = "vet_report.json"


def write_vet_outputs(result: VetResult, out_dir: Path, dry_run: bool = False) -> dict[str, Path]:
    """Write the three files (a dry run writes the report and the would-be quarantine, not the kept data)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"quarantine": out_dir / QUARANTINE_FILE, "report": out_dir / REPORT_FILE}
    lines = [json.dumps(entry.to_dict(), ensure_ascii=False) for entry in result.quarantine]
    atomic_write_text(paths["quarantine"], "\n".join(lines) + ("\n" if lines else ""))
    report = {**result.report, "dry_run": dry_run}
    atomic_write_text(paths["report"], json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    if not dry_run:
        paths["kept"] = write_records_jsonl(out_dir / KEPT_FILE, result.kept)
    return paths


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(filter, removed, modified, flagged, allowed, note) per filter, for the printed table."""
    rows = []
    for name, figures in report["filters"].items():
        if not figures.get("enabled"):
            rows.append((name, "-", "-", "-", "-", "off"))
            continue
        note = _note(figures)
        rows.append(
            (
                name,
                str(figures["removed"]),
                str(figures["modified"]),
                str(figures["flagged"]),
                str(figures["allowed"]),
                note,
            )
        )
    return rows


def _note(figures: dict[str, Any]) -> str:
    parts = []
    if figures.get("over_budget"):
        parts.append(f"{figures['over_budget']} more over the flag budget, kept")
    entities = figures.get("entities")
    if isinstance(entities, dict) and entities:
        parts.append(", ".join(f"{k} {v}" for k, v in sorted(entities.items())))
    if figures.get("note"):
        parts.append(str(figures["note"]))
    parts.append(f"{figures.get('seconds', 0):.1f}s")
    return "; ".join(parts)


def print_vet_summary(report: dict[str, Any], out: Any, paths: dict[str, Path] | None = None) -> None:
    """A rich table with counts per filter, then totals and where the files are."""
    from rich.table import Table

    table = Table(title="data vetting", show_lines=False)
    for column in ("filter", "removed", "modified", "flagged", "allowed", "note"):
        table.add_column(column, justify="right" if column in ("removed", "modified", "flagged", "allowed") else "left")
    for row in summary_rows(report):
        table.add_row(*row)
    out.print(table)
    out.print(
        f"{report['records_in']} records in, {report['records_kept']} kept "
        f"({report['modified']} of them changed), {report['removed']} quarantined, {report['flagged']} flagged"
    )
    if paths:
        out.print("  ".join(f"{name}: {path}" for name, path in paths.items()))

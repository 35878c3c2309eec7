"""`tunesmith run cfg.yaml [--run-dir runs/<id>] [--force STAGE]`: every stage, each skipped when up to date."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tunesmith.config import load_config


def add_run_verb(verbs: argparse._SubParsersAction) -> None:
    run = verbs.add_parser(
        "run",
        help="the whole path: inspect, split, vet, augment, [search], train, evaluate, [audit], export; "
             "stages whose inputs did not change are skipped",
    )
    run.add_argument("config", nargs="?", help="YAML config (default: built-in defaults)")
    run.add_argument("--run-dir", help="run folder (default: <run.output_dir>/<run.run_id or the config's name>)")
    run.add_argument("--force", action="append", default=[], metavar="STAGE",
                     help="rerun this stage and every later one even if up to date (repeatable; `all` for all)")


def search_entry(cfg: Any, folder: Path) -> Any:
    """The search stage's entry: `tunesmith.hpo.run_search` into `<run>/search/search-<hash>` (a changed space
    starts a new study, a larger budget continues the old one). Handed to the pipeline, which ranks below hpo."""
    from tunesmith.hpo.search import run_search, search_hash

    return run_search(cfg, folder / f"search-{search_hash(cfg)}")


def run(args: argparse.Namespace, overrides: list[str]) -> int:
    cfg = load_config(args.config, overrides)  # config errors surface before heavy imports
    from tunesmith.recipes.pipeline import check_force, default_run_path, run_pipeline

    check_force(args.force)
    config_path = Path(args.config) if args.config else None
    run_path = Path(args.run_dir) if args.run_dir else default_run_path(cfg, config_path)
    result = run_pipeline(cfg, run_path, force=args.force, search=search_entry)
    statuses = result.statuses()
    ran = [name for name, status in statuses.items() if status == "done"]
    skipped = [name for name, r in result.records.items() if r.get("reason") == "up to date"]
    print(f"run folder: {result.run_dir}  ({result.seconds:.1f}s; ran {', '.join(ran) or 'nothing'}; "
          f"up to date: {', '.join(skipped) or 'nothing'})")
    return 0


def rerun_pipeline(cfg: Any, original: Path) -> Path:
    """Redo a `tunesmith run` folder with its saved config into a new folder beside it (for `tunesmith rerun`)."""
    from tunesmith.recipes.pipeline import run_pipeline

    result = run_pipeline(cfg, Path(cfg.run.output_dir) / cfg.run.run_id, search=search_entry)
    return result.run_dir

"""`tunesmith search cfg.yaml`: hyperparameter search over the config's `search.space` (Optuna or Ray Tune).

    tunesmith search run.yaml --search.n_trials=30
    tunesmith search run.yaml --search.timeout_minutes=60 --search.sampler=random --search.pruner=none
    tunesmith search run.yaml --search.backend=ray --search.ray_address=auto   # on a Ray cluster

Re-running the same command after an interruption resumes the search (finished trials are kept and counted).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tunesmith.config import load_config


def add_search_verb(verbs: Any) -> None:
    search = verbs.add_parser(
        "search",
        help="hyperparameter search: trials over search.space, pruned early; resumable",
        description="Search the config's `search:` space; writes search_report.json and best_config.yaml.",
    )
    search.add_argument("config", nargs="?", help="YAML config (default: built-in defaults)")
    search.add_argument("--out", metavar="DIR", help="search folder (default <run.output_dir>/search-<hash>)")
    search.add_argument("--retrain-best", action="store_true",
                        help="train the best config on train + validation afterwards (search.retrain_best)")


def search(args: argparse.Namespace, overrides: list[str]) -> int:
    extra = ["--search.retrain_best=true"] if args.retrain_best else []
    cfg = load_config(args.config, overrides + extra)  # config errors surface before heavy imports
    from tunesmith.hpo import search as run

    result = run(cfg, Path(args.out) if args.out else None)
    print(f"search folder: {result.search_dir}")
    if result.best_config_path is not None:
        print(f"best config:   {result.best_config_path}")
    if result.retrain_run_dir is not None:
        print(f"retrained:     {result.retrain_run_dir}")
    return 0 if result.best_config_path is not None else 1

"""Hyperparameter search over config fields: trials of the finetune recipe, pruned early, resumable.

    from tunesmith.hpo import search, run_search
    result = search(cfg, "runs/search")         # SearchResult; search_report.json, best_config.yaml in that folder
    best_cfg = run_search(cfg, "runs/search")   # the same search (resumed: nothing left to run), its best Config

Backends: Optuna in this process (default) or Ray Tune (`search.backend: ray`) running the same trial function.
"""

from tunesmith.hpo.search import SearchResult, default_search_dir, run_search, search

__all__ = ["SearchResult", "default_search_dir", "run_search", "search"]

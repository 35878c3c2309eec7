"""Hyperparameter search: trials of the finetune recipe over `search.space`, pruned early, resumable.

    tunesmith search run.yaml                       # Optuna, trials one after another, SQLite in the folder
    tunesmith search run.yaml --search.backend=ray  # the same trials through Ray Tune (local or a cluster)

The search folder (default `<run.output_dir>/search-<hash>`; the hash ignores the budget, so raising
`search.n_trials` and re-running continues the same search)::

    search.db            Optuna study (SQLite): every trial's values, intermediate values and state
    trials/trial-0000/   one run folder per trial (config.yaml, metrics.jsonl, adapter/, search_trial.json)
    search_report.json   trials, params, values, states, the best
    best_config.yaml     the best trial's config, ready for `tunesmith train`
    best-retrain/        the best config trained on train + validation (when `search.retrain_best`)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.config import Config, config_to_dict
from tunesmith.core.digest import canonical_hash
from tunesmith.core.errors import ConfigError, Problem, TunesmithError
from tunesmith.hpo.report import BEST_CONFIG_FILE, REPORT_FILE, best_config, write_search_report
from tunesmith.hpo.space import derive_config, resolve_space

RETRAIN_RUN_ID = "best-retrain"


@dataclass
class SearchResult:
    """What a search produced; `best_config` is None when no trial completed."""

    search_dir: Path
    report: dict[str, Any]
    best_params: dict[str, Any] | None
    best_value: float | None
    best_config: Config | None
    best_config_path: Path | None
    retrain_run_dir: Path | None

    @property
    def report_path(self) -> Path:
        return self.search_dir / REPORT_FILE


def default_search_dir(cfg: Config) -> Path:
    """`<run.output_dir>/<run.run_id>` or `<run.output_dir>/search-<hash of what the search computes>`."""
    if cfg.run.run_id:
        return Path(cfg.run.output_dir) / cfg.run.run_id
    return Path(cfg.run.output_dir) / f"search-{search_hash(cfg)}"


def search_hash(cfg: Config) -> str:
    """Hash of the config minus what does not change the trials (budget, storage, retraining, run naming)."""
    data = config_to_dict(cfg)
    data["run"] = {"seed": data["run"]["seed"]}
    data.pop("track", None)
    for key in ("enabled", "n_trials", "timeout_minutes", "storage", "retrain_best", "ray_address",
                "ray_max_concurrent"):
        data["search"].pop(key, None)
    return canonical_hash(data)[:8]


def check_searchable(cfg: Config) -> None:
    """Problems that only matter when searching: trials are compared on a validation split."""
    problems = []
    if cfg.data.val_fraction <= 0:
        problems.append(Problem("data.val_fraction", None, f"got {cfg.data.val_fraction}, expected above 0",
                                "a search compares trials on the validation split; set e.g. 0.1"))
    if problems:
        raise ConfigError(problems)


def run_search(cfg: Config, out_dir: str | Path) -> Config:
    """The search stage of `tunesmith run`: search into `out_dir` and return the best config (the pipeline's
    train stage trains it, so `search.retrain_best` is left to `tunesmith search`)."""
    result = search(cfg, out_dir, retrain=False)
    if result.best_config is None:
        raise TunesmithError(f"no trial of the search in {result.search_dir} completed, so there is no best config; "
                             f"see {result.report_path} for why the trials stopped")
    return result.best_config


def search(cfg: Config, out_dir: str | Path | None = None, retrain: bool | None = None) -> SearchResult:
    """Search `cfg.search.space` with the configured backend into `out_dir` (default `default_search_dir`),
    resuming a search already there; write the report and best config; retrain the best when `retrain` (default
    `search.retrain_best`)."""
    from tunesmith.recipes.common import console

    check_searchable(cfg)
    out = console()
    search_dir = Path(out_dir) if out_dir is not None else default_search_dir(cfg)
    search_dir.mkdir(parents=True, exist_ok=True)
    space, dropped = resolve_space(cfg)
    if dropped:
        out.print(f"[yellow]not searched (no effect in this run):[/] {', '.join(dropped)}")
    if not space:
        raise ConfigError([Problem("search.space", None, "no field left to search", "see the fields left out above")])
    out.print(f"[bold]search[/] {search_dir}  backend={cfg.search.backend} sampler={cfg.search.sampler} "
              f"pruner={cfg.search.pruner} fields={', '.join(space)}")
    if cfg.search.backend == "ray":
        from tunesmith.hpo.ray_backend import run_ray_search

        study = run_ray_search(cfg, search_dir, space, out)
    else:
        from tunesmith.hpo.optuna_backend import run_optuna_search

        study = run_optuna_search(cfg, search_dir, space, out)
    report = write_search_report(cfg, study, space, search_dir, cfg.search.backend)
    result = _result(cfg, search_dir, report)
    _print_summary(report, search_dir, out)
    if (cfg.search.retrain_best if retrain is None else retrain) and result.best_params is not None:
        result.retrain_run_dir = retrain_best(cfg, result.best_params, search_dir)
        out.print(f"best config retrained on train + validation: {result.retrain_run_dir}")
    return result


def _result(cfg: Config, search_dir: Path, report: dict[str, Any]) -> SearchResult:
    best = report.get("best")
    if not best:
        return SearchResult(search_dir, report, None, None, None, None, None)
    return SearchResult(search_dir, report, best["params"], best["value"], best_config(cfg, best["params"]),
                        search_dir / BEST_CONFIG_FILE, None)


def retrain_best(cfg: Config, params: dict[str, Any], search_dir: Path) -> Path:
    """The best values trained on train + validation (the test split is unchanged: it is drawn first) and
    evaluated on the test split; resumes like any run if interrupted."""
    from tunesmith.recipes.finetune import finetune

    retrain_cfg = derive_config(cfg, params, **{"run.output_dir": str(search_dir), "run.run_id": RETRAIN_RUN_ID,
                                                "data.val_fraction": 0.0})
    return finetune(retrain_cfg).run_dir


def _print_summary(report: dict[str, Any], search_dir: Path, out: Any) -> None:
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(report["counts"].items()))
    out.print(f"trials: {counts or 'none'}")
    best = report.get("best")
    if best:
        out.print(f"best: trial {best['number']} {report['metric']}={best['value']:.4f} {best['params']}")
        out.print(f"best config: {report['best_config']}  (run it: tunesmith train {report['best_config']})")
    else:
        out.print("[yellow]no trial completed, so there is no best config yet[/]")
    out.print(f"report: {search_dir / REPORT_FILE}")

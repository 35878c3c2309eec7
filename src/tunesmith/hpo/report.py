"""What a search leaves in its folder: `search_report.json` and `best_config.yaml`, both read from the study.

`search_report.json`::

    {"metric": "val_loss", "direction": "minimize", "backend": "optuna", "sampler": "tpe", "pruner": "median",
     "space": {...}, "budget": {"n_trials": 20, "timeout_minutes": null}, "elapsed_s": 412.3,
     "counts": {"COMPLETE": 12, "PRUNED": 7, "FAIL": 1},
     "trials": [{"number": 0, "state": "COMPLETE", "params": {...}, "value": 1.93, "steps_trained": 30,
                 "intermediate": {"10": 2.4, "20": 2.0, "30": 1.93}, "run_dir": "trials/trial-0000", ...}],
     "best": {"number": 4, "value": 1.71, "params": {...}, "run_dir": "..."}, "best_config": "best_config.yaml"}
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tunesmith.config import Config, dump_config
from tunesmith.hpo.space import Space, derive_config
from tunesmith.hpo.trial import read_trial_status, steps_trained, write_trial_status

REPORT_FILE = "search_report.json"
BEST_CONFIG_FILE = "best_config.yaml"


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """One row per trial of the study, with what its run folder says about how far it trained."""
    rows = []
    for t in study.trials:
        run_dir = t.user_attrs.get("run_dir")
        status = read_trial_status(Path(run_dir)) if run_dir else None
        trained = t.user_attrs.get("steps_trained")
        if trained is None and run_dir and Path(run_dir).is_dir():
            trained = steps_trained(Path(run_dir))
        rows.append({
            "number": t.number,
            "state": t.state.name,
            "params": dict(t.params),
            "value": t.value if t.state.name == "COMPLETE" else None,  # optuna keeps a pruned trial's last value
            "steps_trained": trained,
            "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
            "run_dir": run_dir,
            "duration_s": round(t.duration.total_seconds(), 2) if t.duration else None,
            "interrupted": bool(t.user_attrs.get("interrupted", False)),
            "reason": (status or {}).get("reason") if t.state.name != "COMPLETE" else None,
        })
    return rows


def mark_stopped_trials(study: Any) -> None:
    """Give each pruned or failed trial's run folder its status when the trial could not write it (a Ray
    scheduler stops a trial from outside)."""
    for t in study.trials:
        run_dir = t.user_attrs.get("run_dir")
        if t.state.name not in ("PRUNED", "FAIL") or not run_dir or not Path(run_dir).is_dir():
            continue
        status = read_trial_status(Path(run_dir))
        if status is not None and status.get("state") == t.state.name:
            continue
        last = max(t.intermediate_values, default=None)
        write_trial_status(Path(run_dir), {
            "number": t.number, "state": t.state.name, "params": dict(t.params), "value": None,
            "steps_trained": steps_trained(Path(run_dir)), "intermediate": dict(t.intermediate_values),
            "reason": f"stopped by the scheduler after step {last}" if t.state.name == "PRUNED" else "failed",
        })


def best_trial(study: Any) -> Any | None:
    """The best complete trial (None when no trial completed)."""
    complete = [t for t in study.trials if t.state.name == "COMPLETE" and t.value is not None]
    if not complete:
        return None
    sign = 1 if study.direction.name == "MINIMIZE" else -1
    return min(complete, key=lambda t: (sign * t.value, t.number))


def best_config(cfg: Config, params: dict[str, Any]) -> Config:
    """The user's config with the best values: runs as a plain `tunesmith train` (search switched off)."""
    return derive_config(cfg, params, **{"run.run_id": None})


def write_best_config(cfg: Config, best: Any, search_dir: Path) -> Path:
    path = search_dir / BEST_CONFIG_FILE
    header = (f"# best of the search in {search_dir}: trial {best.number}, {cfg.search.metric}={best.value:.6g}\n"
              f"# values found: {dict(best.params)}\n# run it: tunesmith train {path}\n")
    path.write_text(header + dump_config(best_config(cfg, dict(best.params))), encoding="utf-8")
    return path


def write_search_report(cfg: Config, study: Any, space: Space, search_dir: Path, backend: str) -> dict[str, Any]:
    """search_report.json (and best_config.yaml when a trial completed); returns the report."""
    from tunesmith.track.run_dir import RunDir

    mark_stopped_trials(study)
    rows = trial_rows(study)
    best = best_trial(study)
    s = cfg.search
    report: dict[str, Any] = {
        "metric": s.metric, "direction": s.direction, "backend": backend, "sampler": s.sampler,
        "pruner": s.pruner, "space": space, "budget": {"n_trials": s.n_trials, "timeout_minutes": s.timeout_minutes},
        "elapsed_s": round(float(study.user_attrs.get("elapsed_s", 0.0)), 2),
        "counts": dict(Counter(row["state"] for row in rows)),
        "trials": rows,
        "best": None, "best_config": None,
    }
    if best is not None:
        report["best"] = {"number": best.number, "value": best.value, "params": dict(best.params),
                          "run_dir": best.user_attrs.get("run_dir")}
        report["best_config"] = str(write_best_config(cfg, best, search_dir))
    RunDir(search_dir).write_json(REPORT_FILE, report)
    return report

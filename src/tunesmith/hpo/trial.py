"""One trial: a `finetune` run with sampled values, in its own run folder, reporting validation values as it goes.

The same function runs under both backends; only `report` differs. Optuna's reporter records the value and
raises `optuna.TrialPruned` when the pruner says stop; Ray's passes it to `ray.tune.report` and Ray's scheduler
stops the trial. Either way the trial's run folder gets `search_trial.json` saying how the trial ended::

    {"number": 3, "state": "PRUNED", "params": {...}, "value": null, "steps_trained": 10,
     "intermediate": {"5": 2.31, "10": 2.29}, "reason": "pruned at step 10"}
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.config import Config
from tunesmith.hpo.space import derive_config, eval_every_steps, trial_settings

TRIAL_STATUS_FILE = "search_trial.json"
Report = Callable[[int, float], None]
"""`report(step, value)`: hand an intermediate objective value to the backend; may raise to stop the trial."""


@dataclass
class TrialOutcome:
    """A finished trial: its objective value and where it ran."""

    value: float
    run_dir: Path
    steps_trained: int


def objective_value(metric: str, val_loss: float) -> float:
    """The search objective from a validation loss (`val_perplexity` is its exponential)."""
    if metric == "val_perplexity":
        return math.exp(min(val_loss, 700.0))  # exp overflows a float past ~709
    return val_loss


def trial_run_id(number: int) -> str:
    return f"trial-{number:04d}"


def run_trial(
    base: Config, params: dict[str, Any], trials_dir: Path, number: int, report: Report,
    run_id: str | None = None, extra_settings: dict[str, Any] | None = None,
) -> TrialOutcome:
    """Train `base` with `params` in `trials_dir/<run_id>/`; `report` gets each intermediate objective value.

    Raises what `report` raises (a pruned trial), after writing the trial's status into its run folder.
    """
    from tunesmith.recipes.finetune import finetune

    run_id = run_id or trial_run_id(number)
    run_dir = trials_dir / run_id
    settings = {**trial_settings(base, trials_dir, run_id, eval_every_steps(base)), **(extra_settings or {})}
    cfg = derive_config(base, params, **settings)
    metric = base.search.metric
    intermediate: dict[int, float] = {}
    # during its own learning-rate warm-up a trial's loss says more about its schedule than its values: not judged
    judge_from = cfg.train.warmup_steps or 0

    def on_validation(step: int, val_loss: float | None) -> None:
        if val_loss is None or not math.isfinite(val_loss):
            return  # nothing to judge yet (or a diverged run, which the final value reports)
        value = objective_value(metric, val_loss)
        intermediate[step] = value
        if step >= judge_from:
            report(step, value)

    status: dict[str, Any] = {"number": number, "params": params, "metric": metric}
    try:
        result = finetune(cfg, evaluate_after=False, on_validation=on_validation)
    except BaseException as exc:
        state = _stopped_state(exc)
        write_trial_status(run_dir, {**status, "state": state, "value": None,
                                     "steps_trained": steps_trained(run_dir), "intermediate": intermediate,
                                     "reason": str(exc) or type(exc).__name__})
        raise
    val_loss = result.train.get("val_loss")
    value = objective_value(metric, val_loss) if val_loss is not None else math.nan
    steps = int(result.train.get("steps") or 0)
    write_trial_status(run_dir, {**status, "state": "COMPLETE", "value": value, "steps_trained": steps,
                                 "intermediate": intermediate, "reason": None})
    return TrialOutcome(value=value, run_dir=run_dir, steps_trained=steps)


def _stopped_state(exc: BaseException) -> str:
    if type(exc).__name__ == "TrialPruned":  # optuna's; compared by name so a Ray-only install needs no optuna
        return "PRUNED"
    if isinstance(exc, KeyboardInterrupt):
        return "INTERRUPTED"
    return "FAIL"


def write_trial_status(run_dir: Path, status: dict[str, Any]) -> None:
    """`search_trial.json` in the trial's run folder (atomic: a kill never leaves half a file)."""
    from tunesmith.core.durable import atomic_write_text

    run_dir.mkdir(parents=True, exist_ok=True)
    intermediate = {str(k): v for k, v in status.get("intermediate", {}).items()}
    text = json.dumps({**status, "intermediate": intermediate}, indent=2, default=str) + "\n"
    atomic_write_text(run_dir / TRIAL_STATUS_FILE, text)


def read_trial_status(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / TRIAL_STATUS_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def steps_trained(run_dir: Path) -> int:
    """The last optimizer step logged in the run folder's metrics.jsonl (0 before the first log line)."""
    from tunesmith.track.run_dir import RunDir

    return max((int(row.get("step", 0)) for row in RunDir(run_dir).read_metrics()), default=0)

"""The Optuna backend: a study in SQLite in the search folder, trials run one after another in this process.

Resuming: the study is opened with `load_if_exists=True`, so a search restarted after an interruption keeps its
finished trials, counts them against the budget and never re-runs them. A trial that was running when its
process died is marked failed (with `interrupted` set) and its values are queued again under the same run
folder, so it continues from its last checkpoint instead of starting over.
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path
from typing import Any

from tunesmith.config import Config
from tunesmith.hpo.space import Space, eval_every_steps, grid_size, grid_values, sample_params
from tunesmith.hpo.trial import run_trial, trial_run_id

STUDY_NAME = "tunesmith-search"
FINISHED_STATES = ("COMPLETE", "PRUNED", "FAIL")


def storage_url(cfg: Config, search_dir: Path) -> str:
    return cfg.search.storage or f"sqlite:///{(search_dir / 'search.db').resolve()}"


def make_sampler(cfg: Config, space: Space, offset: int) -> Any:
    """The configured sampler, seeded by `search.seed` (or `run.seed`) plus `offset`: a resumed search draws new
    values instead of repeating the first session's draws."""
    import optuna

    s = cfg.search
    seed = (s.seed if s.seed is not None else cfg.run.seed) + offset
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.sampler == "grid":
        return optuna.samplers.GridSampler(grid_values(space), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.startup_trials)


def make_pruner(cfg: Config) -> Any:
    import optuna

    s = cfg.search
    if s.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=s.pruner_startup_trials,
                                           n_warmup_steps=s.pruner_warmup_steps)
    if s.pruner == "successive_halving":
        # rungs at min_resource * 3**k steps; the first rung is the first validation a trial may be judged at
        first = max(eval_every_steps(cfg), s.pruner_warmup_steps)
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=3)
    return optuna.pruners.NopPruner()


def open_study(cfg: Config, search_dir: Path, space: Space, with_pruner: bool = True) -> tuple[Any, Any]:
    """(study, storage): the study created or reopened, with a sampler seeded past the trials it already has."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search_dir.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.get_storage(storage_url(cfg, search_dir))
    common: dict[str, Any] = {"study_name": STUDY_NAME, "storage": storage, "load_if_exists": True,
                              "direction": cfg.search.direction}
    existing = len(optuna.create_study(**common).trials)
    pruner = make_pruner(cfg) if with_pruner else optuna.pruners.NopPruner()
    return optuna.create_study(sampler=make_sampler(cfg, space, existing), pruner=pruner, **common), storage


def counted_trials(study: Any) -> int:
    """Trials that use up the budget: finished ones, except those failed only because their process died."""
    return sum(1 for t in study.trials if t.state.name in FINISHED_STATES and not t.user_attrs.get("interrupted"))


def recover_interrupted(study: Any, storage: Any, requeue: bool = True) -> list[int]:
    """Mark trials left RUNNING by a dead process as failed; queue their values again (same run folder)."""
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(STUDY_NAME)
    recovered = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _owner_alive(t.user_attrs):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, "interrupted", True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        if requeue and t.params:
            run_id = t.user_attrs.get("run_id", trial_run_id(t.number))
            study.enqueue_trial(t.params, user_attrs={"run_id": run_id, "resumes_trial": t.number})
        recovered.append(t.number)
    return recovered


def _owner_alive(attrs: dict[str, Any]) -> bool:
    """Whether the process that ran a trial still runs (on this host; another host's trial is left alone)."""
    host, pid = attrs.get("host"), attrs.get("pid")
    if host is None or pid is None:
        return False
    if host != socket.gethostname():
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remaining_budget(cfg: Config, study: Any, space: Space) -> tuple[int | None, float | None]:
    """(trials, seconds) still to spend, counting what earlier sessions of this search spent."""
    s = cfg.search
    n_trials = s.n_trials
    if s.sampler == "grid":
        n_trials = min(n_trials or grid_size(space), grid_size(space))
    trials = None if n_trials is None else max(0, n_trials - counted_trials(study))
    seconds = None
    if s.timeout_minutes is not None:
        seconds = max(0.0, s.timeout_minutes * 60 - float(study.user_attrs.get("elapsed_s", 0.0)))
    return trials, seconds


def run_optuna_search(cfg: Config, search_dir: Path, space: Space, out: Any) -> Any:
    """Run the remaining budget of trials; returns the study."""
    import optuna

    study, storage = open_study(cfg, search_dir, space)
    recovered = recover_interrupted(study, storage)
    if recovered:
        out.print(f"resuming: trial(s) {recovered} were interrupted and are queued again from their checkpoints")
    trials, seconds = remaining_budget(cfg, study, space)
    done = counted_trials(study)
    if trials == 0 or (seconds is not None and seconds <= 0):
        out.print(f"budget already spent ({done} trials finished); nothing left to run")
        return study
    if done:
        out.print(f"resuming a search with {done} finished trial(s)")
    trials_dir = search_dir / "trials"
    elapsed_before = float(study.user_attrs.get("elapsed_s", 0.0))
    started = time.monotonic()

    def objective(trial: optuna.Trial) -> float:
        run_id = trial.user_attrs.get("run_id") or trial_run_id(trial.number)
        for key, value in {"run_id": run_id, "run_dir": str(trials_dir / run_id), "host": socket.gethostname(),
                           "pid": os.getpid()}.items():
            trial.set_user_attr(key, value)
        params = sample_params(trial, space)
        out.print(f"[bold]trial {trial.number}[/] {_short(params)}")

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step}")

        try:
            outcome = run_trial(cfg, params, trials_dir, trial.number, report, run_id=run_id)
        except KeyboardInterrupt:  # Ctrl-C: the next session re-runs these values from the trial's checkpoint
            trial.set_user_attr("interrupted", True)
            study.enqueue_trial(params, user_attrs={"run_id": run_id, "resumes_trial": trial.number})
            raise
        trial.set_user_attr("steps_trained", outcome.steps_trained)
        if not math.isfinite(outcome.value):
            raise FloatingPointError(f"trial {trial.number} ended with {cfg.search.metric}={outcome.value}")
        return outcome.value

    def account(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        study.set_user_attr("elapsed_s", elapsed_before + time.monotonic() - started)
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        out.print(f"trial {trial.number}: {trial.state.name} {cfg.search.metric}={value}")

    # a failing trial (a diverged or invalid combination) is recorded as FAIL and the search goes on
    try:
        study.optimize(objective, n_trials=trials, timeout=seconds, catch=(Exception,), callbacks=[account])
    finally:  # the time after the last trial's callback counts too: Optuna checked its deadline after it
        study.set_user_attr("elapsed_s", elapsed_before + time.monotonic() - started)
    return study


def _short(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())

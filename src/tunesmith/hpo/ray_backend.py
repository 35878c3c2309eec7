"""The Ray Tune backend: the same trial function, run in parallel by Ray (one trial per CPU slice or per GPU).

    tunesmith search run.yaml --search.backend=ray                          # Ray started on this machine
    tunesmith search run.yaml --search.backend=ray --search.ray_address=auto --search.ray_gpus_per_trial=1

Ray's `OptunaSearch` proposes values from the same Optuna study in the search folder's SQLite file (so the report,
best config and resume work as with the Optuna backend); Ray's scheduler (ASHA for `successive_halving`, the
median stopping rule for `median`) stops trials whose validation loss lags. A stopped trial is recorded as PRUNED
in the study and in its run folder. On a cluster, the search folder must be on storage every node can write
(trial run folders are written by the worker that runs the trial), and tunesmith installed on every node.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from tunesmith.config import Config
from tunesmith.hpo.optuna_backend import STUDY_NAME, make_sampler, open_study, recover_interrupted, remaining_budget
from tunesmith.hpo.space import Space, eval_every_steps, optuna_distributions
from tunesmith.hpo.trial import run_trial, trial_run_id

OBJECTIVE_KEY = "objective"
FINISHED_KEY = "trial_finished"
_NUMBER_KEY = "__trial_number"
_RUN_ID_KEY = "__run_id"


class TrialAwareOptunaSearch(OptunaSearch):  # type: ignore[misc]
    """Ray's OptunaSearch, telling each trial its Optuna number (its run folder's name), keying intermediate
    values by training step, and recording a trial the scheduler stopped as PRUNED (Ray would tell Optuna its last
    intermediate value as if it were final)."""

    def __init__(self, *args: Any, trials_dir: Path, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._trials_dir = trials_dir

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        if config is None:
            return None
        ot_trial = self._ot_trials[trial_id]
        run_id = ot_trial.user_attrs.get("run_id") or trial_run_id(ot_trial.number)
        ot_trial.set_user_attr("run_id", run_id)
        ot_trial.set_user_attr("run_dir", str(self._trials_dir / run_id))
        return {**config, _NUMBER_KEY: ot_trial.number, _RUN_ID_KEY: run_id}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._completed_trials or self.metric not in result or result.get(FINISHED_KEY):
            return
        self._ot_trials[trial_id].report(result[self.metric], int(result.get("step", 0)))

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if result and not result.get(FINISHED_KEY):  # stopped early by the scheduler: pruned
            if self.metric in result and trial_id in self._ot_trials and trial_id not in self._completed_trials:
                # the result that made the scheduler stop the trial never reached on_trial_result
                self._ot_trials[trial_id].report(result[self.metric], int(result.get("step", 0)))
            result = {k: v for k, v in result.items() if k != self.metric}
        if result and result.get(FINISHED_KEY) and trial_id in self._ot_trials:
            self._ot_trials[trial_id].set_user_attr("steps_trained", int(result.get("step", 0)))
        super().on_trial_complete(trial_id, result, error)


def ray_trial(config: dict[str, Any], base: Config, trials_dir: str, extra_settings: dict[str, Any]) -> None:
    """The Ray trainable: the shared trial function with a reporter that hands values to Ray."""
    from ray import tune

    params = dict(config)
    number, run_id = int(params.pop(_NUMBER_KEY)), str(params.pop(_RUN_ID_KEY))

    def report(step: int, value: float) -> None:
        tune.report({OBJECTIVE_KEY: value, "step": step})

    outcome = run_trial(base, params, Path(trials_dir), number, report, run_id=run_id,
                        extra_settings=extra_settings)
    tune.report({OBJECTIVE_KEY: outcome.value, "step": outcome.steps_trained, FINISHED_KEY: True})


def make_scheduler(cfg: Config) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    s = cfg.search
    first = max(eval_every_steps(cfg), s.pruner_warmup_steps)
    mode = "min" if s.direction == "minimize" else "max"
    if s.pruner == "median":
        return MedianStoppingRule(time_attr="step", metric=OBJECTIVE_KEY, mode=mode, grace_period=first,
                                  min_samples_required=max(1, s.pruner_startup_trials))
    if s.pruner == "successive_halving":
        return ASHAScheduler(time_attr="step", metric=OBJECTIVE_KEY, mode=mode, max_t=10**9, grace_period=first,
                             reduction_factor=3)
    return FIFOScheduler()


def start_ray(cfg: Config) -> bool:
    """Connect to `search.ray_address` or start Ray on this machine; False when Ray was already running."""
    import ray

    if ray.is_initialized():
        return False
    if cfg.search.ray_address:
        ray.init(address=cfg.search.ray_address, log_to_driver=False)
    else:
        ray.init(include_dashboard=False, log_to_driver=False)  # all of this machine's CPUs and GPUs
    return True


def run_ray_search(cfg: Config, search_dir: Path, space: Space, out: Any) -> Any:
    """Run the remaining budget through Ray Tune; returns the Optuna study the trials were told to."""
    import ray
    from ray import tune

    s = cfg.search
    search_dir = search_dir.resolve()
    study, storage = open_study(cfg, search_dir, space, with_pruner=False)  # Ray's scheduler prunes
    recovered = recover_interrupted(study, storage)
    if recovered:
        out.print(f"resuming: trial(s) {recovered} were interrupted and are queued again from their checkpoints")
    trials, seconds = remaining_budget(cfg, study, space)
    if trials == 0 or (seconds is not None and seconds <= 0):
        out.print("budget already spent; nothing left to run")
        return study
    trials_dir = search_dir / "trials"
    searcher = TrialAwareOptunaSearch(
        space=optuna_distributions(space), metric=OBJECTIVE_KEY, mode="min" if s.direction == "minimize" else "max",
        sampler=make_sampler(cfg, space, len(study.trials)), study_name=STUDY_NAME, storage=storage,
        trials_dir=trials_dir,
    )
    settings = {"model.num_threads": max(1, int(s.ray_cpus_per_trial))}
    trainable = tune.with_resources(
        tune.with_parameters(ray_trial, base=cfg, trials_dir=str(trials_dir), extra_settings=settings),
        {"cpu": s.ray_cpus_per_trial, "gpu": s.ray_gpus_per_trial},
    )
    started_ray = start_ray(cfg)
    started = time.monotonic()
    try:
        out.print(f"ray: {ray.cluster_resources()}; {s.ray_cpus_per_trial:g} CPU + {s.ray_gpus_per_trial:g} GPU "
                  "per trial")
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=make_scheduler(cfg),
                                        num_samples=-1 if trials is None else trials,
                                        max_concurrent_trials=s.ray_max_concurrent, time_budget_s=seconds),
            run_config=tune.RunConfig(name="tune", storage_path=str(search_dir / "ray"), verbose=0),
        )
        tuner.fit()
    finally:
        study.set_user_attr("elapsed_s", float(study.user_attrs.get("elapsed_s", 0.0)) + time.monotonic() - started)
        if started_ray:
            ray.shutdown()
    return study

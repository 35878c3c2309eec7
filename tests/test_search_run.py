"""Whole searches on the tiny model (`-m integration`): pruning prunes, budgets hold, a killed search resumes, the
best config reproduces the best trial, and the Ray backend runs the same trials."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_integration import write_intent_data

from tunesmith.config import Config, dump_config, load_config
from tunesmith.hpo import run_search, search
from tunesmith.hpo.trial import read_trial_status

pytestmark = pytest.mark.integration
LR_SPACE = "{train.learning_rate: {type: loguniform, low: 1.0e-5, high: 3.0}}"
FULL_STEPS = 18  # 36 training records / batch 4 = 9 steps an epoch, 2 epochs


def search_config(work: Path, model_dir: Path, *extra: str) -> Config:
    work.mkdir(parents=True, exist_ok=True)
    data = write_intent_data(work / "intents.jsonl")
    return load_config(None, [
        f"--model.source={model_dir}", f"--data.train_file={data}", f"--run.output_dir={work / 'runs'}",
        "--model.num_threads=1", "--encode.max_seq_length=96", "--train.batch_size=4", "--train.epochs=2",
        "--train.save_every_steps=6", "--vet.enabled=false", "--search.eval_every_steps=3",
        "--search.pruner_startup_trials=2", f"--search.space={LR_SPACE}", *extra,
    ])


def load_study(search_dir: Path) -> Any:
    import optuna

    return optuna.load_study(study_name="tunesmith-search", storage=f"sqlite:///{search_dir / 'search.db'}")


@pytest.fixture(scope="module")
def pruned_search(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Config, Path, dict]:
    """8 random trials over a learning-rate range from far too small to far too large, median pruner."""
    work = tmp_path_factory.mktemp("search")
    cfg = search_config(work, tiny_model_dir, "--search.sampler=random", "--search.n_trials=8")
    result = search(cfg, work / "search")
    return cfg, work / "search", result.report


def test_median_pruner_stops_bad_trials_early(pruned_search: tuple[Config, Path, dict]) -> None:
    _, search_dir, report = pruned_search
    trials = report["trials"]
    states = [t["state"] for t in trials]
    assert len(trials) == 8 and "PRUNED" in states and "COMPLETE" in states, states
    for t in trials:
        status = read_trial_status(Path(t["run_dir"]))
        assert status is not None and status["state"] == t["state"]  # the run folder says how the trial ended
        if t["state"] == "PRUNED":
            assert t["steps_trained"] < FULL_STEPS and t["value"] is None
            assert "pruned at step" in status["reason"]
        else:
            assert t["steps_trained"] == FULL_STEPS and t["value"] == pytest.approx(t["intermediate"]["18"])
    pruned = [t for t in trials if t["state"] == "PRUNED"]
    # a pruned trial was worse than the median of the earlier complete trials at the step it was stopped
    for t in pruned:
        step = max(t["intermediate"], key=int)
        earlier = [u["intermediate"][step] for u in trials if u["number"] < t["number"] and u["state"] == "COMPLETE"]
        assert t["intermediate"][step] > sorted(earlier)[(len(earlier) - 1) // 2]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    best = min(complete, key=lambda t: t["value"])
    assert report["best"]["number"] == best["number"] and report["counts"]["PRUNED"] == len(pruned)


def test_best_config_loads_and_reproduces_the_best_trial(pruned_search: tuple[Config, Path, dict]) -> None:
    from tunesmith.recipes.finetune import finetune

    cfg, search_dir, report = pruned_search
    best = load_config(search_dir / "best_config.yaml")
    assert best.train.learning_rate == report["best"]["params"]["train.learning_rate"]
    assert run_search(cfg, search_dir) == best  # the pipeline's entry: the search is done, its best config back
    assert best.search.enabled is False and best.run.run_id is None and best.run.output_dir == cfg.run.output_dir
    # trained as a plain run, the best config reaches the best trial's validation loss (CPU is deterministic)
    rerun = load_config(search_dir / "best_config.yaml", ["--run.run_id=again", "--eval.report_html=false"])
    result = finetune(rerun, evaluate_after=False)
    assert result.train["val_loss"] == pytest.approx(report["best"]["value"], rel=1e-6)


def test_trial_budget_counts_finished_trials_and_never_repeats_them(
    pruned_search: tuple[Config, Path, dict], tiny_model_dir: Path
) -> None:
    cfg, search_dir, report = pruned_search
    again = search(cfg, search_dir)  # same budget: already spent
    assert len(again.report["trials"]) == 8
    bigger = copy.deepcopy(cfg)
    bigger.search.n_trials = 10
    extended = search(bigger, search_dir).report["trials"]
    assert [t["number"] for t in extended] == list(range(10))
    before = {t["params"]["train.learning_rate"] for t in report["trials"]}
    new = [t["params"]["train.learning_rate"] for t in extended[8:]]
    assert not before & set(new)  # the resumed sampler draws new values, not the first session's again


def test_minutes_budget_stops_starting_trials_and_counts_across_sessions(tmp_path: Path, tiny_model_dir: Path) -> None:
    cfg = search_config(tmp_path, tiny_model_dir, "--search.n_trials=null", "--search.timeout_minutes=0.1",
                        "--search.pruner=none")
    search_dir = tmp_path / "search"
    report = search(cfg, search_dir).report
    n = len(report["trials"])
    assert 1 <= n < 20 and report["elapsed_s"] >= 6.0
    durations = [t["duration_s"] for t in report["trials"]]
    assert sum(durations[:-1]) < 6.0 + 1.0  # every trial but the last started inside the budget
    assert len(search(cfg, search_dir).report["trials"]) == n  # the budget spent before is remembered


def test_killed_search_resumes_without_repeating_finished_trials(tmp_path: Path, tiny_model_dir: Path) -> None:
    cfg = search_config(tmp_path, tiny_model_dir, "--search.n_trials=4", "--search.pruner=none",
                        "--train.epochs=4")
    config_path = tmp_path / "search.yaml"
    config_path.write_text(dump_config(cfg))
    search_dir = tmp_path / "search"
    command = [sys.executable, "-m", "tunesmith.cli.main", "search", str(config_path), "--out", str(search_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    checkpoint = search_dir / "trials" / "trial-0002" / "checkpoints" / "step-000006" / "COMPLETE"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpoint.exists(), "the search never reached trial 2's first checkpoint"
    os.kill(proc.pid, signal.SIGKILL)  # mid-trial: trials 0 and 1 finished, trial 2 at step 6 or a little later
    proc.wait()
    finished_before = {t.number: t.params for t in load_study(search_dir).trials if t.state.name == "COMPLETE"}
    assert set(finished_before) == {0, 1}

    assert subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode == 0
    trials = load_study(search_dir).trials
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4  # the budget counted the two trials of the first session
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]  # numbering continued
    assert trials[2].state.name == "FAIL" and trials[2].user_attrs["interrupted"]
    for number, params in finished_before.items():  # finished trials kept, never run again
        assert trials[number].state.name == "COMPLETE"
        assert sum(t.params == params for t in trials) == 1
    resumed = trials[3]  # the interrupted values, re-run in the same folder from its checkpoint
    assert resumed.params == trials[2].params and resumed.user_attrs["resumes_trial"] == 2
    assert resumed.user_attrs["run_id"] == "trial-0002"
    train_report = json.loads((search_dir / "trials" / "trial-0002" / "train_report.json").read_text())
    assert train_report["resumed_from_step"] >= 6 and train_report["steps"] == 36
    assert json.loads((search_dir / "search_report.json").read_text())["counts"] == {"COMPLETE": 4, "FAIL": 1}


def test_ray_backend_runs_the_same_trials(tmp_path: Path, tiny_model_dir: Path) -> None:
    ray = pytest.importorskip("ray")
    cfg = search_config(tmp_path, tiny_model_dir, "--search.backend=ray", "--search.n_trials=2",
                        "--search.pruner=successive_halving")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = search(cfg, tmp_path / "search")
    finally:
        ray.shutdown()
    trials = result.report["trials"]
    assert len(trials) == 2 and result.report["backend"] == "ray"
    assert {t["state"] for t in trials} <= {"COMPLETE", "PRUNED"} and trials[0]["state"] == "COMPLETE"
    for t in trials:
        status = read_trial_status(Path(t["run_dir"]))
        assert status is not None and status["state"] == t["state"]
        assert t["intermediate"] and t["params"]["train.learning_rate"] > 0
    best = load_config(result.best_config_path)
    assert best.train.learning_rate == result.best_params["train.learning_rate"]
    # the same seed proposes the same first values under both backends
    first = trials[0]["params"]["train.learning_rate"]
    optuna_cfg = search_config(tmp_path / "o", tiny_model_dir, "--search.n_trials=1")
    optuna_trials = search(optuna_cfg, tmp_path / "o" / "search").report["trials"]
    assert optuna_trials[0]["params"]["train.learning_rate"] == first

"""The search space: validation of `search.space`, sampling within bounds, and values mapped onto a trial config."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from tunesmith.cli.main import main
from tunesmith.config import Config, load_config
from tunesmith.config.search_schema import default_space, flatten_space
from tunesmith.core.errors import ConfigError
from tunesmith.hpo.space import derive_config, grid_values, optuna_distributions, resolve_space, sample_params


def _problems(space: str, *extra: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"--search.space={space}", *extra])
    return {p.where: f"{p.message} {p.hint or ''}" for p in info.value.problems}


def test_unknown_field_fails_with_did_you_mean() -> None:
    problems = _problems("{train.learnig_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-3}}")
    assert "search.space.train.learnig_rate" in problems
    assert "did you mean train.learning_rate?" in problems["search.space.train.learnig_rate"]


def test_bad_specs_name_the_field_and_the_fix() -> None:
    problems = _problems(
        "{train.learning_rate: {type: loguniform, low: 0, high: 1.0e-3}, train.batch_size: {type: uniform, low: 2,"
        " high: 8}, adapter.dropout: {type: unifrom, low: 0, high: 0.1}, adapter.r: {choices: []},"
        " run.seed: {type: int, low: 0, high: 3}, train.epochs: {type: int, low: 3, high: 1}}"
    )
    assert "positive" in problems["search.space.train.learning_rate.low"]
    assert "use type: int or categorical" in problems["search.space.train.batch_size.type"]
    assert "did you mean uniform?" in problems["search.space.adapter.dropout.type"]
    assert "non-empty list" in problems["search.space.adapter.r.choices"]
    assert "names or mirrors runs" in problems["search.space.run.seed"]
    assert "low <= high" in problems["search.space.train.epochs"]


def test_grid_needs_finite_values_and_direction_must_fit_the_metric() -> None:
    problems = _problems("{adapter.dropout: {type: uniform, low: 0, high: 0.2}}", "--search.sampler=grid",
                         "--search.direction=maximize")
    assert "add a step" in problems["search.space.adapter.dropout"]
    assert "'minimize' for val_loss" in problems["search.direction"]


def test_nested_mapping_and_dotted_override_mean_the_same_field(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("search:\n  space:\n    train.learning_rate: {type: loguniform, low: 1e-5, high: 1e-3}\n")
    cfg = load_config(path, ["--search.space.train.learning_rate.high=1e-2"])
    space = flatten_space(cfg.search.space)
    # YAML 1.1 reads `1e-5` as a string; the space reads it as the number meant, and the override merges in
    assert space == {"train.learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-2}}


def test_default_space_covers_the_main_knobs_and_drops_fields_without_effect() -> None:
    assert set(default_space()) == {"train.learning_rate", "adapter.r", "adapter.alpha", "adapter.dropout",
                                    "train.epochs", "train.batch_size", "train.warmup_steps", "augment.multiplier"}
    space, dropped = resolve_space(Config())  # augmentation is off by default
    assert "augment.multiplier" not in space and dropped == ["augment.multiplier (augment.enabled is false)"]
    ia3 = load_config(None, ["--adapter.method=ia3", "--augment.enabled=true"])
    space, dropped = resolve_space(ia3)
    assert "augment.multiplier" in space and not set(space) & {"adapter.r", "adapter.alpha", "adapter.dropout"}


def test_samples_stay_within_bounds_and_map_to_config_overrides() -> None:
    import optuna

    cfg = load_config(None, ["--augment.enabled=true"])
    space, _ = resolve_space(cfg)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_r = set()
    for _ in range(40):
        params = sample_params(study.ask(), space)
        assert 1e-5 <= params["train.learning_rate"] <= 3e-3
        assert params["adapter.r"] in (4, 8, 16, 32) and params["train.batch_size"] in (4, 8, 16)
        assert 0.0 <= params["adapter.dropout"] <= 0.2 and 1.0 <= params["augment.multiplier"] <= 3.0
        assert params["train.epochs"] in (1, 2, 3, 4) and params["train.warmup_steps"] in (0, 5, 10, 15, 20)
        seen_r.add(params["adapter.r"])
        trial_cfg = derive_config(cfg, params, **{"run.run_id": "trial-0001"})
        assert trial_cfg.train.learning_rate == params["train.learning_rate"]
        assert trial_cfg.adapter.r == params["adapter.r"] and trial_cfg.train.epochs == params["train.epochs"]
        assert trial_cfg.augment.multiplier == params["augment.multiplier"]
        assert trial_cfg.run.run_id == "trial-0001" and trial_cfg.search.enabled is False
        assert trial_cfg.train.weight_decay == cfg.train.weight_decay  # everything else is the user's
    assert seen_r == {4, 8, 16, 32}
    # log-uniform really is log: about half the draws fall below the geometric middle of the range
    draws = [sample_params(study.ask(), {"train.learning_rate": space["train.learning_rate"]})["train.learning_rate"]
             for _ in range(200)]
    below = sum(d < math.sqrt(1e-5 * 3e-3) for d in draws) / len(draws)
    assert 0.35 < below < 0.65


def test_grid_values_and_distributions() -> None:
    space = {"train.warmup_steps": {"type": "int", "low": 0, "high": 10, "step": 5},
             "adapter.dropout": {"type": "uniform", "low": 0.0, "high": 0.2, "step": 0.1},
             "adapter.r": {"choices": [4, 8]}}
    assert grid_values(space) == {"train.warmup_steps": [0, 5, 10], "adapter.dropout": [0.0, 0.1, 0.2],
                                  "adapter.r": [4, 8]}
    dist = optuna_distributions({"train.learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3}})
    assert dist["train.learning_rate"].log and dist["train.learning_rate"].low == 1e-5


def test_template_shows_the_default_space() -> None:
    from tunesmith.config.template import render_template

    raw = yaml.safe_load(render_template())
    assert raw["search"]["space"]["train.learning_rate"] == {"type": "loguniform", "low": 1e-5, "high": 3e-3}


def test_cli_search_rejects_a_bad_space_before_training(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("search:\n  space:\n    adapter.rank: {choices: [4, 8]}\n")
    assert main(["search", str(path)]) == 2
    err = capsys.readouterr().err
    assert "search.space.adapter.rank" in err and "did you mean adapter.r?" in err

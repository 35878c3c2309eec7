"""The search space: which config fields are searched, their Optuna distributions, and a trial's config.

    space = resolve_space(cfg)                      # dotted field -> spec, fields without effect left out
    distributions = optuna_distributions(space)     # what the sampler draws from
    trial_cfg = derive_config(cfg, params, ...)     # the run's config with the sampled values applied

A trial's config is the user's config with the sampled values as dotted overrides, so it is validated by the same
loader as any `tunesmith train` config and written into the trial's run folder like any run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tunesmith.config import Config, config_to_dict
from tunesmith.config.loader import config_from_dict
from tunesmith.config.search_schema import flatten_space

Space = dict[str, dict[str, Any]]
LORA_FIELDS = ("adapter.r", "adapter.alpha", "adapter.dropout")
LORA_METHODS = ("lora", "dora", "qlora")


def resolve_space(cfg: Config) -> tuple[Space, list[str]]:
    """The space to search and the fields left out because they change nothing in this run (with why)."""
    space = flatten_space(cfg.search.space)
    dropped: list[str] = []
    for name in list(space):
        why = _why_ineffective(cfg, name)
        if why:
            dropped.append(f"{name} ({why})")
            del space[name]
    return space, dropped


def _why_ineffective(cfg: Config, name: str) -> str | None:
    if name in LORA_FIELDS and cfg.adapter.method not in LORA_METHODS:
        return f"adapter.method is {cfg.adapter.method}"
    if name.startswith("augment.") and name != "augment.enabled" and not cfg.augment.enabled:
        return "augment.enabled is false"
    if name == "train.epochs" and cfg.train.max_steps is not None:
        return "train.max_steps is set"
    return None


def spec_kind(spec: dict[str, Any]) -> str:
    return str(spec.get("type", "categorical" if "choices" in spec else ""))


def optuna_distributions(space: Space) -> dict[str, Any]:
    """Optuna distribution per field (the ask/tell interface and Ray's OptunaSearch both take these)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec_kind(spec)
        if kind == "categorical":
            out[name] = CategoricalDistribution(list(spec["choices"]))
        elif kind == "int":
            out[name] = IntDistribution(int(spec["low"]), int(spec["high"]), step=int(spec.get("step") or 1),
                                        log=bool(spec.get("log", False)))
        else:
            step = spec.get("step")
            out[name] = FloatDistribution(float(spec["low"]), float(spec["high"]), log=kind == "loguniform",
                                          step=float(step) if step is not None else None)
    return out


def grid_values(space: Space) -> dict[str, list[Any]]:
    """Every value of each field, for the grid sampler (floats need a step; the schema checks it)."""
    grid: dict[str, list[Any]] = {}
    for name, spec in space.items():
        kind = spec_kind(spec)
        if kind == "categorical":
            grid[name] = list(spec["choices"])
            continue
        low, high = spec["low"], spec["high"]
        step = spec.get("step") or 1
        count = int(math.floor((high - low) / step + 1e-9)) + 1
        values = [low + i * step for i in range(count)]
        grid[name] = [int(v) for v in values] if kind == "int" else [round(float(v), 12) for v in values]
    return grid


def grid_size(space: Space) -> int:
    return math.prod(len(values) for values in grid_values(space).values())


def sample_params(trial: Any, space: Space) -> dict[str, Any]:
    """Draw one value per field through an Optuna trial (define-by-run, so pruning and TPE see every value)."""
    distributions = optuna_distributions(space)
    return {name: _suggest(trial, name, dist) for name, dist in distributions.items()}


def _suggest(trial: Any, name: str, dist: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def apply_overrides(raw: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config dict with each dotted field set to its value."""
    import copy

    out = copy.deepcopy(raw)
    for dotted, value in params.items():
        *sections, name = dotted.split(".")
        target = out
        for section in sections:
            target = target[section]
        target[name] = value
    return out


def derive_config(base: Config, params: dict[str, Any], **settings: Any) -> Config:
    """The config of a trial (or of the best one): `base` with `params` and `settings` (dotted) applied, and the
    search switched off, so the config runs as a plain `tunesmith train`."""
    raw = apply_overrides(config_to_dict(base), {**params, **settings, "search.enabled": False})
    return config_from_dict(raw)


def trial_settings(base: Config, trials_dir: Path, run_id: str, eval_every_steps: int) -> dict[str, Any]:
    """What a trial run changes besides the sampled values: its folder, validation cadence and a lean report."""
    return {
        "run.output_dir": str(trials_dir),
        "run.run_id": run_id,
        "train.eval_every_steps": eval_every_steps,
        "train.resume": "auto",  # an interrupted trial re-run in its own folder continues from its checkpoint
        "eval.report_html": False,
    }


def eval_every_steps(base: Config) -> int:
    """Validation cadence inside trials: the search's setting, else the training's, else its logging cadence."""
    return base.search.eval_every_steps or base.train.eval_every_steps or base.train.log_every_steps


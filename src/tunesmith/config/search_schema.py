"""The `search:` section: hyperparameter search over a declared space of config fields (`tunesmith search`).

The space maps dotted config fields to a distribution::

    search:
      space:
        train.learning_rate: {type: loguniform, low: 1.0e-5, high: 3.0e-3}
        adapter.r: {type: categorical, choices: [4, 8, 16, 32]}
        train.warmup_steps: {type: int, low: 0, high: 20, step: 5}

Spec types: `loguniform` / `uniform` (floats, optional `step` for uniform), `int` (optional `step`, `log`),
`categorical` (`choices`). A nested mapping (`space: {train: {learning_rate: {...}}}`, or a dotted override
`--search.space.train.learning_rate.high=1e-2`) means the same as the dotted key. This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from tunesmith.config.rules import need_into
from tunesmith.core.errors import Problem

SPEC_TYPES = ("loguniform", "uniform", "int", "categorical")
SPEC_KEYS = {"type", "low", "high", "step", "log", "choices"}
OBJECTIVE_METRICS = {"val_loss": "minimize", "val_perplexity": "minimize"}
"""Metrics a trial measures on the validation split (never the test split: choosing on it would leak)."""
_SCI_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
UNSEARCHABLE_SECTIONS = ("run", "search", "track")
"""Sections that name or mirror runs rather than change what a trial computes."""


def default_space() -> dict[str, dict[str, Any]]:
    """The space searched when the YAML declares none: the knobs that matter most for LoRA fine-tuning."""
    return {
        "train.learning_rate": {"type": "loguniform", "low": 1e-5, "high": 3e-3},
        "adapter.r": {"type": "categorical", "choices": [4, 8, 16, 32]},
        "adapter.alpha": {"type": "categorical", "choices": [8, 16, 32, 64]},
        "adapter.dropout": {"type": "uniform", "low": 0.0, "high": 0.2},
        "train.epochs": {"type": "int", "low": 1, "high": 4},
        "train.batch_size": {"type": "categorical", "choices": [4, 8, 16]},
        "train.warmup_steps": {"type": "int", "low": 0, "high": 20, "step": 5},
        "augment.multiplier": {"type": "uniform", "low": 1.0, "high": 3.0},
    }


@dataclass
class SearchConfig:
    """Hyperparameter search: each trial is a training run with sampled values; pruned early when clearly worse."""

    enabled: bool = False
    """Run the search stage in `tunesmith run` (`tunesmith search` always searches)."""
    backend: Literal["optuna", "ray"] = "optuna"
    """`optuna`: trials one after another in this process; `ray`: trials in parallel through Ray Tune (extra)."""
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    """How trial values are chosen: `tpe` (Optuna's default), `random`, or `grid` (every combination)."""
    seed: int | None = None
    """Seed of the sampler; null: `run.seed`."""
    metric: str = "val_loss"
    """Objective: a validation metric of each trial (`val_loss`, `val_perplexity`)."""
    direction: Literal["minimize", "maximize"] = "minimize"
    """Whether a lower or a higher `metric` is better."""
    space: dict[str, dict[str, Any]] = field(default_factory=default_space)
    """Dotted config field -> {type: loguniform|uniform|int|categorical, low, high, step, log, choices}. A space
    given in the YAML replaces this default; fields without effect in the run (LoRA rank for ia3, augmentation
    when `augment.enabled` is false) are left out."""
    startup_trials: int = 5
    """Random trials before TPE starts modelling the space (TPE only)."""
    pruner: Literal["median", "successive_halving", "none"] = "median"
    """Stop a trial early when its validation loss is worse than the median of earlier trials at the same step
    (`median`), or by successive halving; `none` runs every trial to the end."""
    pruner_startup_trials: int = 3
    """Trials that always run to the end before the pruner may stop any (median pruner)."""
    pruner_warmup_steps: int = 0
    """Optimizer steps a trial always trains before it may be pruned."""
    eval_every_steps: int | None = None
    """Validation loss every N steps inside each trial, fed to the pruner; null: `train.eval_every_steps`, else
    `train.log_every_steps`."""
    n_trials: int | None = 20
    """Budget in trials, counting those finished before an interruption; null: only `timeout_minutes` limits."""
    timeout_minutes: float | None = None
    """Budget in wall-clock minutes (all sessions of a resumed search together); null: only `n_trials` limits."""
    storage: str | None = None
    """Optuna storage URL; null: SQLite `search.db` in the search folder (an interrupted search resumes)."""
    retrain_best: bool = False
    """After `tunesmith search`, train the best config on train + validation and evaluate it on the test split
    (in `tunesmith run` the train stage trains the best config)."""
    ray_address: str | None = None
    """Ray backend: address of an existing cluster (`auto` on a cluster node, or `host:6379`); null: start Ray on
    this machine. Run the search on a cluster node (Ray Client `ray://` addresses are not supported)."""
    ray_cpus_per_trial: float = 1.0
    """Ray backend: CPUs reserved by each trial (also its torch threads)."""
    ray_gpus_per_trial: float = 0.0
    """Ray backend: GPUs reserved by each trial (1 = one trial per GPU)."""
    ray_max_concurrent: int | None = None
    """Ray backend: most trials at once; null: as many as the resources allow."""


def flatten_space(space: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Dotted key -> spec, with nested mappings and dotted keys merged (a spec is a mapping holding spec keys)."""
    flat: dict[str, dict[str, Any]] = {}
    for key, value in space.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and not (set(value) & SPEC_KEYS):
            nested = flatten_space(value, f"{name}.")
        else:
            nested = {name: _numbers_read(value)}
        for dotted, spec in nested.items():
            if isinstance(flat.get(dotted), dict) and isinstance(spec, dict):
                flat[dotted] = {**flat[dotted], **spec}
            else:
                flat[dotted] = spec
    return flat


def _numbers_read(spec: Any) -> Any:
    """YAML 1.1 reads `1e-4` (no dot) as a string; read such numerals as the numbers the user meant."""
    if not isinstance(spec, dict):
        return spec
    out = dict(spec)
    for key in ("low", "high", "step"):
        if isinstance(out.get(key), str) and _SCI_NUMBER.match(out[key]):
            out[key] = float(out[key])
    if isinstance(out.get("choices"), list):
        out["choices"] = [float(c) if isinstance(c, str) and _SCI_NUMBER.match(c) else c for c in out["choices"]]
    return out


def config_fields(config_cls: type, prefix: str = "") -> dict[str, Any]:
    """Every leaf field of a config dataclass as dotted name -> type annotation (nested blocks recurse)."""
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(config_fields(tp, f"{prefix}{f.name}."))  # type: ignore[arg-type]
        else:
            out[f"{prefix}{f.name}"] = tp
    return out


def search_problems(cfg: SearchConfig, config_cls: type) -> list[Problem]:
    """Every rule `cfg` breaks, each naming the field (`search.<field>` or `search.space.<dotted field>`)."""
    problems: list[Problem] = []
    need = need_into(problems, "search")

    need(cfg.metric in OBJECTIVE_METRICS, "metric", cfg.metric, f"one of {', '.join(OBJECTIVE_METRICS)}",
         "trials are compared on the validation split; test metrics would leak into the choice")
    natural = OBJECTIVE_METRICS.get(cfg.metric, cfg.direction)
    need(cfg.direction == natural, "direction", cfg.direction, f"{natural!r} for {cfg.metric}")
    need(cfg.startup_trials >= 0, "startup_trials", cfg.startup_trials, "0 or more")
    need(cfg.n_trials is None or cfg.n_trials > 0, "n_trials", cfg.n_trials, "a positive integer or null")
    need(cfg.timeout_minutes is None or cfg.timeout_minutes > 0, "timeout_minutes", cfg.timeout_minutes,
         "a positive number or null")
    need(cfg.n_trials is not None or cfg.timeout_minutes is not None or cfg.sampler == "grid", "n_trials",
         cfg.n_trials, "a budget", "set search.n_trials or search.timeout_minutes")
    need(cfg.pruner_startup_trials >= 0, "pruner_startup_trials", cfg.pruner_startup_trials, "0 or more")
    need(cfg.pruner_warmup_steps >= 0, "pruner_warmup_steps", cfg.pruner_warmup_steps, "0 or more")
    need(cfg.eval_every_steps is None or cfg.eval_every_steps > 0, "eval_every_steps", cfg.eval_every_steps,
         "a positive integer or null")
    need(cfg.ray_cpus_per_trial > 0, "ray_cpus_per_trial", cfg.ray_cpus_per_trial, "a positive number")
    need(cfg.ray_gpus_per_trial >= 0, "ray_gpus_per_trial", cfg.ray_gpus_per_trial, "0 or more")
    address = cfg.ray_address or ""
    need(not address.startswith("ray://"), "ray_address", cfg.ray_address, "`auto` or host:port",
         "run `tunesmith search` on a cluster node (or through `ray job submit`): the search's study file lives "
         "beside the driver")
    need(cfg.ray_max_concurrent is None or cfg.ray_max_concurrent > 0, "ray_max_concurrent",
         cfg.ray_max_concurrent, "a positive integer or null")
    flat = flatten_space(cfg.space)
    need(bool(flat), "space", cfg.space, "at least one field to search")
    known = config_fields(config_cls)
    for name, spec in flat.items():
        problems.extend(_spec_problems(name, spec, known, cfg.sampler))
    return problems


def _spec_problems(name: str, spec: Any, known: dict[str, Any], sampler: str) -> list[Problem]:
    where = f"search.space.{name}"
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "use a dotted config field such as train.learning_rate"
        return [Problem(where, None, "unknown config field", hint)]
    if name.split(".")[0] in UNSEARCHABLE_SECTIONS:
        return [Problem(where, None, "this section names or mirrors runs; searching it changes nothing trained",
                        "search fields of train, adapter, encode, augment, data, vet or eval")]
    if not isinstance(spec, dict):
        return [Problem(where, None, f"got {spec!r}, expected a mapping like {{type: uniform, low: 0, high: 1}}",
                        None)]
    kind = spec.get("type", "categorical" if "choices" in spec else None)
    if kind not in SPEC_TYPES:
        close = difflib.get_close_matches(str(kind), SPEC_TYPES, n=1)
        hint = f"did you mean {close[0]}?" if close else f"one of {', '.join(SPEC_TYPES)}"
        return [Problem(f"{where}.type", None, f"got {kind!r}, expected one of {', '.join(SPEC_TYPES)}", hint)]
    extra = sorted(set(spec) - SPEC_KEYS)
    if extra:
        return [Problem(where, None, f"unknown spec keys {extra}", f"known: {', '.join(sorted(SPEC_KEYS))}")]
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            return [Problem(f"{where}.choices", None, f"got {choices!r}, expected a non-empty list", None)]
        if not all(c is None or isinstance(c, bool | int | float | str) for c in choices):
            return [Problem(f"{where}.choices", None, f"got {choices!r}, expected numbers, strings, true/false or "
                            "null (the samplers store plain values)", None)]
        return []
    return _range_problems(where, kind, spec, known[name], sampler)


def _range_problems(where: str, kind: str, spec: dict[str, Any], field_type: Any, sampler: str) -> list[Problem]:
    low: Any = spec.get("low")
    high: Any = spec.get("high")
    step: Any = spec.get("step")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not math.isfinite(low) or not math.isfinite(high) or low > high:
        return [Problem(where, None, f"got low={low!r}, high={high!r}, expected two numbers with low <= high", None)]
    problems = []
    if kind == "loguniform" and low <= 0:
        problems.append(Problem(f"{where}.low", None, f"got {low!r}, expected a positive number (log scale)", None))
    if kind == "int" and not (isinstance(low, int) and isinstance(high, int)):
        problems.append(Problem(where, None, f"got low={low!r}, high={high!r}, expected integers", None))
    if kind != "int" and _is_int_field(field_type):
        problems.append(Problem(f"{where}.type", None, f"got {kind!r} for an integer field",
                                "use type: int or categorical"))
    if step is not None and (not isinstance(step, int | float) or step <= 0 or kind == "loguniform"):
        problems.append(Problem(f"{where}.step", None, f"got {step!r}, expected a positive number "
                                "(not allowed with loguniform)", None))
    if sampler == "grid" and kind != "int" and step is None:
        problems.append(Problem(where, None, "a grid needs finite values", "add a step, or use categorical choices"))
    return problems


def _is_int_field(tp: Any) -> bool:
    """`int` or `int | None`: a float sample would not fit."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return tp is int or args == [int]

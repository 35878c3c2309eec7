"""The `adversarial:` section: embedding-space adversarial training (`train.strategy: adversarial`).

Each token's input embedding gets a perturbation bounded per token: its l2 norm (`norm: l2`) or its largest entry
(`norm: linf`) is at most `epsilon`. With `relative: true` (the default) `epsilon` and `step_size` are fractions of
the batch's root-mean-square token-embedding norm (l2), or of its root-mean-square entry (linf), so one setting
means the same across models whose embeddings differ in scale; with `relative: false` they are absolute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tunesmith.config.rules import need_into
from tunesmith.core.errors import Problem


@dataclass
class AdversarialConfig:
    """Adversarial training in embedding space: the model minimises clean loss + weight x worst-case loss."""

    method: Literal["pgd", "freelb", "fgsm"] = "pgd"
    """`pgd`: `steps` ascent steps, then train on the loss at the last perturbation; `freelb`: train on the mean loss
    over every ascent step (FreeLB); `fgsm`: one ascent step of size `epsilon`."""
    epsilon: float = 0.01
    """Bound on each token's perturbation (l2 norm, or largest entry for linf); relative or absolute, see
    `relative`. Small on purpose: on the README's measured task 0.03 already cut clean accuracy to a third."""
    relative: bool = True
    """Scale `epsilon` and `step_size` by the batch's RMS token-embedding norm (l2) or RMS entry (linf); false:
    absolute embedding units."""
    step_size: float = 0.005
    """Length of one ascent step per token (same units as `epsilon`); `fgsm` uses `epsilon` instead."""
    steps: int = 2
    """Ascent steps per micro-batch for `pgd` and `freelb` (`fgsm` takes one)."""
    norm: Literal["l2", "linf"] = "l2"
    """Which norm bounds each token's perturbation; steps follow the normalised gradient (l2) or its sign (linf)."""
    weight: float = 1.0
    """Weight of the adversarial loss: the training loss is clean + weight x adversarial (summed over targets)."""
    init: Literal["zero", "random"] = "zero"
    """Starting perturbation: `zero` (the clean pass gives the first ascent direction for free) or `random`
    (uniform within the bound)."""


def adversarial_problems(cfg: AdversarialConfig) -> list[Problem]:
    """Every bound `cfg` breaks, each naming the field (`adversarial.<field>`)."""
    problems: list[Problem] = []
    need = need_into(problems, "adversarial")

    need(cfg.epsilon > 0, "epsilon", cfg.epsilon, "a positive bound", "typical: 0.001 to 0.05 with relative: true")
    need(cfg.step_size > 0, "step_size", cfg.step_size, "a positive step", "typical: epsilon / steps")
    need(cfg.steps >= 1, "steps", cfg.steps, "at least 1 ascent step")
    need(cfg.weight >= 0, "weight", cfg.weight, "0 or more (0 trains on the clean loss only)")
    return problems

"""DP-SGD as a strategy of the one training loop (`train.strategy: dp`, config block `privacy:`).

    tunesmith train configs/demo.yaml --privacy.target_epsilon=8

Each optimizer step:

1. draw the logical batch by Poisson sampling (`dp_sampling.PoissonBatches`, expected size
   `batch_size * grad_accum_steps`, sample rate q = that / number of training examples);
2. in passes of at most `privacy.max_physical_batch_size` examples: per-example mean loss, one backward pass,
   per-example gradients of the trainable parameters (Opacus hooks), each clipped to `privacy.max_grad_norm` and
   summed (`dp_grads`);
3. add Gaussian noise N(0, (sigma * max_grad_norm)^2) once, divide by the expected batch size, hand the result
   to the optimizer; the accountant records one step (q, sigma), however many chunks the step had.

The noise and the sampling are seeded by (secret seed, step), and the secret seed, sigma and the accountant's
history live in the strategy state that every checkpoint holds, so a resumed run is bitwise the uninterrupted one.
Frozen parameters never receive a gradient. The loop calls `accumulate_gradients` in place of its own backward
pass, then `after_backward` (noise, accountant step); the loop's global clipping is skipped (`handles_clipping`).
"""

from __future__ import annotations

import math
import secrets
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tunesmith.core.errors import ConfigError, Problem
from tunesmith.train.batches import BatchSource, EpochBatches
from tunesmith.train.dp_accounting import (
    accountant_step,
    calibrate_noise,
    epsilon_spent,
    privacy_report,
)
from tunesmith.train.dp_sampling import PoissonBatches
from tunesmith.train.strategy import STRATEGIES

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tunesmith.train.dp_grads import PerExampleGradHooks


@STRATEGIES.register("dp")
class DPStrategy:
    """DP-SGD: Poisson sampling, per-example clipping, Gaussian noise, Opacus accounting (see module doc)."""

    name = "dp"
    handles_clipping = True

    def __init__(self, config: Any = None) -> None:
        from tunesmith.config.schema import Config

        cfg = config if config is not None else Config()
        self.privacy = cfg.privacy
        self.train_cfg = cfg.train
        p = self.privacy
        if (p.target_epsilon is None) == (p.noise_multiplier is None):
            raise ConfigError([Problem("privacy.target_epsilon", None, "DP-SGD needs exactly one of "
                                       "privacy.target_epsilon and privacy.noise_multiplier",
                                       "e.g. --privacy.target_epsilon=8")])
        self.secret_seed: int = p.secret_seed if p.secret_seed is not None else secrets.randbits(63)
        self.noise_multiplier: float | None = p.noise_multiplier
        self.sample_rate: float | None = None
        self.expected_batch_size: float | None = None
        self.history: list[tuple[float, float, int]] = []
        self.source: PoissonBatches | None = None
        self._params: list[tuple[str, nn.Parameter]] = []
        self._sums: list[torch.Tensor] = []
        self._clipped: tuple[int, int] = (0, 0)  # (examples clipped, examples seen) in the current step
        self._last_clipped_share: float | None = None
        self._epsilon_cache: tuple[int, float] | None = None
        self._hooks: PerExampleGradHooks | None = None
        self._total_steps: int | None = None

    # -- setup ---------------------------------------------------------------------------------------------------

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, batches: BatchSource
    ) -> tuple[nn.Module, torch.optim.Optimizer, BatchSource]:
        from tunesmith.train import distributed
        from tunesmith.train.dp_grads import trainable_parameters
        from tunesmith.train.optim import total_steps

        if distributed.current().enabled:
            raise ConfigError([Problem("launch.num_processes", None, "DP-SGD runs in one process here: the "
                                       "noise and the accountant assume one Poisson draw per step",
                                       "set launch.num_processes=1 for a dp run")])
        items, collate = _examples_of(batches)
        n, t = len(items), self.train_cfg
        if not self.privacy.delta < 1 / n:
            raise ConfigError([Problem("privacy.delta", None, f"{self.privacy.delta} is not below 1 / {n} "
                                       "training examples: such a guarantee allows leaking whole examples",
                                       f"set privacy.delta below {1 / n:.2g} (typical: 1e-5)")])
        accum = max(1, t.grad_accum_steps)
        self.expected_batch_size = float(min(t.batch_size * accum, n))
        self.sample_rate = self.expected_batch_size / n
        self.source = PoissonBatches(items, self.sample_rate, collate, self.secret_seed, accum)
        self._total_steps = total_steps(batches.num_batches(), accum, t.epochs, t.max_steps)
        if self.noise_multiplier is None:  # calibrate to the budget over the whole run
            assert self.privacy.target_epsilon is not None  # checked in __init__
            self.noise_multiplier = calibrate_noise(self.privacy.target_epsilon, self.privacy.delta,
                                                    self.sample_rate, self._total_steps, self.privacy.accountant)
        self._params = trainable_parameters(model)
        import opacus.grad_sample  # noqa: F401  # import now (~2 s), not inside the first timed step
        _check_optimizer_holds(optimizer, self._params)
        return model, optimizer, self.source

    # -- one optimizer step --------------------------------------------------------------------------------------

    def accumulate_gradients(
        self, model: nn.Module, batches: Sequence[dict[str, Any]], device: torch.device,
        autocast_dtype: torch.dtype | None = None,
    ) -> tuple[float, int, int]:
        """Clipped per-example gradients of the step's Poisson draw, summed: (loss sum, target tokens, tokens)."""
        import torch

        from tunesmith.encode.pack import count_target_tokens, count_tokens
        from tunesmith.train.dp_grads import PerExampleGradHooks

        assert self.source is not None, "setup() first"
        if self._hooks is None:
            self._hooks = PerExampleGradHooks(model)
        examples = [item for micro in batches for item in micro["items"]]
        self._sums = [torch.zeros_like(p, dtype=torch.float32) for _, p in self._params]
        loss_sum, n_targets, n_inputs, clipped = 0.0, 0, 0, 0
        chunk = self.physical_batch_size()
        with self._hooks.active():
            for start in range(0, len(examples), chunk):
                batch = self.source.collate(examples[start : start + chunk])
                n_inputs += count_tokens(batch)
                targets = count_target_tokens(batch)
                if targets == 0:
                    continue  # nothing to learn: these examples' gradients are zero
                part_loss, part_clipped = self._chunk_backward(model, batch, device, autocast_dtype)
                loss_sum, n_targets, clipped = loss_sum + part_loss, n_targets + targets, clipped + part_clipped
        self._clipped = (clipped, len(examples))
        return loss_sum, n_targets, n_inputs

    def physical_batch_size(self) -> int:
        """Most examples per forward/backward pass (`privacy.max_physical_batch_size`, see its doc)."""
        if self.privacy.max_physical_batch_size is not None:
            return self.privacy.max_physical_batch_size
        size = max(1, self.train_cfg.batch_size)
        return size + math.ceil(3 * math.sqrt(size))

    def _chunk_backward(
        self, model: nn.Module, batch: dict[str, Any], device: torch.device, autocast_dtype: torch.dtype | None
    ) -> tuple[float, int]:
        """(summed loss, examples clipped) of one physical batch; its clipped gradients are added to the sums."""
        from tunesmith.models.device import autocast_context
        from tunesmith.train.dp_grads import clip_and_sum, sequence_mean_losses, take_grad_samples

        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
        with autocast_context(device, autocast_dtype):
            means, sums = sequence_mean_losses(model, batch)  # (B,), (B,)
        with warnings.catch_warnings():  # the first adapted layer's input needs no gradient: expected, not a fault
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            means.sum().backward()  # the sum of per-example means: each example's gradient is its own
        samples = take_grad_samples(self._params, len(means))
        norms = clip_and_sum(samples, self.privacy.max_grad_norm, self._sums)
        return float(sums.detach().sum()), int((norms > self.privacy.max_grad_norm).sum())

    def after_backward(self, model: nn.Module) -> None:
        """Noise once per step, average over the expected batch size, account the step."""
        import torch

        assert self.noise_multiplier is not None and self.sample_rate is not None
        assert self.expected_batch_size is not None
        step = self.steps
        std = self.noise_multiplier * self.privacy.max_grad_norm
        generator = torch.Generator(device="cpu").manual_seed(_noise_seed(self.secret_seed, step))
        for (_, param), total in zip(self._params, self._sums, strict=True):
            noise = torch.randn(total.shape, generator=generator, dtype=torch.float32) * std
            grad = (total + noise.to(total.device)) / self.expected_batch_size
            param.grad = grad.to(param.dtype)
        self._sums = []
        accountant_step(self.history, self.noise_multiplier, self.sample_rate)
        seen = self._clipped[1]
        self._last_clipped_share = self._clipped[0] / seen if seen else None
        if self.steps == self._total_steps:
            self.close()  # the run's last step: nothing may keep Opacus' hooks on the trained model

    def close(self) -> None:
        """Remove the per-example gradient hooks from the model (done after the last step; safe to repeat)."""
        if self._hooks is not None:
            self._hooks.close()
            self._hooks = None

    def compute_loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        """Token-summed loss of a collated batch (the protocol's hook; the step itself uses per-example means)."""
        from tunesmith.encode.pack import count_target_tokens
        from tunesmith.train.dp_grads import sequence_mean_losses

        _, sums = sequence_mean_losses(model, batch)
        return sums.sum(), count_target_tokens(batch)

    # -- state and reporting -------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"secret_seed": self.secret_seed, "noise_multiplier": self.noise_multiplier,
                "sample_rate": self.sample_rate, "history": [list(h) for h in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.secret_seed = int(state["secret_seed"])
        self.noise_multiplier = float(state["noise_multiplier"])
        self.history = [(float(s), float(q), int(n)) for s, q, n in state["history"]]
        if self.source is not None:
            self.source.seed = self.secret_seed

    @property
    def steps(self) -> int:
        """Optimizer steps accounted so far (one per Poisson draw)."""
        return sum(n for _, _, n in self.history)

    def epsilon(self) -> float:
        """Epsilon spent so far at `privacy.delta` (cached per step count: the PRV accountant takes ~0.5 s)."""
        if self._epsilon_cache is None or self._epsilon_cache[0] != self.steps:
            self._epsilon_cache = (self.steps, epsilon_spent(self.history, self.privacy.delta,
                                                             self.privacy.accountant))
        return self._epsilon_cache[1]

    def metrics(self) -> dict[str, float]:
        out = {"epsilon": self.epsilon()}
        if self._last_clipped_share is not None:
            out["clipped_share"] = self._last_clipped_share
        return out

    def report(self) -> dict[str, Any]:
        """`privacy_report.json`'s fields for the steps taken so far."""
        assert self.noise_multiplier is not None and self.sample_rate is not None, "setup() first"
        p = self.privacy
        return privacy_report(self.history, delta=p.delta, noise_multiplier=self.noise_multiplier,
                              sample_rate=self.sample_rate, accountant=p.accountant,
                              max_grad_norm=p.max_grad_norm, target_epsilon=p.target_epsilon)


def _examples_of(batches: BatchSource) -> tuple[Sequence[Any], Callable[[list[Any]], dict[str, Any]]]:
    """The training examples behind the loop's batches and their collate; refuses sources DP-SGD cannot re-draw
    by Poisson sampling."""
    from tunesmith.encode.pack import PackedRow

    if isinstance(batches, PoissonBatches):
        return batches.items, batches.collate
    if not isinstance(batches, EpochBatches):
        raise ConfigError([Problem("train.strategy", None, f"DP-SGD cannot account batches from "
                                   f"{type(batches).__name__}: its accountants assume Poisson sampling, and a "
                                   "shuffled fixed-size sampler is a different mechanism",
                                   "pass the training examples (the loop's EpochBatches) so DP-SGD draws them")])
    items = batches.items
    if not items:
        raise ConfigError([Problem("data", None, "no training examples", "add training records")])
    if isinstance(items[0], PackedRow):
        raise ConfigError([Problem("encode.packing", None, "DP-SGD's privacy unit is one example, but the rows "
                                   "are packed (several examples per row)", "set encode.packing=false")])
    return items, batches.collate


def _check_optimizer_holds(optimizer: torch.optim.Optimizer, params: list[tuple[str, nn.Parameter]]) -> None:
    """The optimizer must update the very tensors that get the DP gradients (moving a model after building its
    optimizer or adapter leaves stale copies: the silent no-update of Opacus issue 820)."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    stale = [name for name, p in params if id(p) not in held]
    if stale or len(held) != len(params):
        raise ConfigError([Problem("train.strategy", None, f"the optimizer does not hold the model's trainable "
                                   f"parameters ({len(stale)} missing, e.g. {stale[:2]})",
                                   "build the optimizer after placing the model on its device")])


def _noise_seed(secret_seed: int, step: int) -> int:
    """A 63-bit seed for step `step`'s noise, derived from the run's secret seed."""
    import numpy as np

    return int(np.random.SeedSequence([secret_seed, step, 0x6E6F697365]).generate_state(1, np.uint64)[0] >> 1)

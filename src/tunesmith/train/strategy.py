"""Training strategies: one loop (`tunesmith.train.loop`), with the parts that differ between methods plugged in.

A strategy is an object with the hooks below; the loop calls them in this order::

    model, optimizer, batches = strategy.setup(model, optimizer, batches)     # once, before the first step
    for each optimizer step:
        for each micro-batch:
            loss_sum, n = strategy.compute_loss(model, batch)                  # summed over target tokens
            (loss_sum / n_step).backward()        # n_step: target tokens of all micro-batches of the step
        strategy.after_backward(model)                                        # grads are final here
        clip gradients (skipped when strategy.handles_clipping)
        optimizer.step(); scheduler.step(); optimizer.zero_grad()
        strategy.metrics()                                                    # merged into each log line
    checkpoint: strategy.state_dict() is saved; load_state_dict() on resume

How the planned strategies fit without copying the loop:

- DP-SGD (`train.dp`): `setup` swaps in a Poisson-sampled batch source; the optional hook
  `accumulate_gradients(model, micro_batches, device, autocast_dtype) -> (loss sum, target tokens, tokens)`
  replaces the loop's backward pass (per-example gradients, clipped and summed); `after_backward` adds the noise;
  `handles_clipping = True`; `state_dict` holds the accountant's history; `metrics` reports epsilon.
- Federated client (FedAvg/FedProx): `setup` loads the global adapter tensors; `compute_loss` may add the
  proximal term; the client's `fit` runs the loop for its local steps and returns the adapter tensors.
- Adversarial training: `compute_loss` perturbs input embeddings (FGSM/PGD in embedding space) and returns the
  clean + adversarial loss.

`state_dict()` must return JSON-able values or tensors (nested dicts / lists are fine): the checkpoint stores
tensors in safetensors and the rest as JSON, never pickle.

Register a strategy with `@STRATEGIES.register("name")` on a factory (usually the class) that takes the run's whole
`Config` (or None, for defaults), so a strategy reads its own block (`privacy:`, `adversarial:`, ...); recipes create
one with `make_strategy(name, cfg)` and pass it to `train(..., strategy=...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tunesmith.core.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tunesmith.train.batches import BatchSource


@runtime_checkable
class Strategy(Protocol):
    """The hooks a training strategy provides to the loop (see the module docstring for the call order)."""

    name: str
    handles_clipping: bool
    """True when the strategy clips gradients itself (e.g. DP-SGD's per-sample clipping)."""

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, batches: BatchSource
    ) -> tuple[nn.Module, torch.optim.Optimizer, BatchSource]:
        """Wrap or replace the model, optimizer and batch source before training (opacus `make_private` style)."""
        ...

    def compute_loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        """(loss summed over target tokens, number of target tokens) for one micro-batch."""
        ...

    def after_backward(self, model: nn.Module) -> None:
        """Called once per optimizer step, after every micro-batch's backward and before clipping."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint: JSON-able values and tensors only."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        ...

    def metrics(self) -> dict[str, float]:
        """Extra numbers for the metrics log (e.g. epsilon spent)."""
        ...


STRATEGIES: Registry[Callable[[Any], Strategy]] = Registry("training strategy")


@STRATEGIES.register("plain")
class PlainStrategy:
    """Ordinary fine-tuning: token-level cross-entropy on target tokens, no wrapping."""

    name = "plain"
    handles_clipping = False

    def __init__(self, config: Any = None, chunk_tokens: int = 1024) -> None:
        self.chunk_tokens = chunk_tokens

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, batches: BatchSource
    ) -> tuple[nn.Module, torch.optim.Optimizer, BatchSource]:
        return model, optimizer, batches

    def compute_loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        from tunesmith.train.loss import causal_lm_loss

        return causal_lm_loss(model, batch, chunk_tokens=self.chunk_tokens, reduction="sum")

    def after_backward(self, model: nn.Module) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def metrics(self) -> dict[str, float]:
        return {}


BUILTIN_STRATEGY_MODULES = ("tunesmith.train.adversarial", "tunesmith.train.dp", "tunesmith.train.federated.proximal")
"""Modules that register the built-in strategies besides `plain`; imported on first lookup, not at import time."""


def make_strategy(name: str, config: Any = None) -> Strategy:
    """A new strategy instance by registered name, configured from the run's `Config` (None: the strategy's
    defaults). Unknown names fail with the known ones listed."""
    import importlib

    for module in BUILTIN_STRATEGY_MODULES:
        importlib.import_module(module)
    return STRATEGIES.get(name)(config)

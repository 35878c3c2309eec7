"""Per-example losses and per-example gradients of the trainable parameters, clipped and summed (DP-SGD's core).

Per-example gradients come from Opacus' hooks (`opacus.grad_sample.GradSampleHooks`): a forward hook keeps each
trainable layer's input, a backward hook forms the per-example gradient from that input and the layer's output
gradient (for a linear layer `einsum("b...o,b...i->boi")`). One forward and one backward pass give every
example's gradient; `tests/test_train_dp.py` checks them against one-example-at-a-time autograd.

The hooks are attached once, active only inside a training step, and removed when the run's last step is done
(`PerExampleGradHooks`), so evaluation, generation and saving never see them. Only parameters with
`requires_grad` get hooks: the frozen base weights are never touched. Every trainable parameter must receive a
per-example gradient, or the step fails loudly: Opacus issue 820 reports DP-LoRA runs that finish without error
yet barely move their adapters (traced there to the order of device placement and wrapping); `DPStrategy` also
checks that the optimizer holds the very tensors that get the gradients, and the tests check the adapters move.

Loss: each example's loss is the mean over its own target tokens, and the batch's objective is the sum of those,
so one example's gradient never depends on the other examples in the batch (a token mean over the batch would
scale it by their lengths). Shapes: B examples, T positions, H hidden, V vocabulary, N target positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tunesmith.core.errors import TunesmithError
from tunesmith.train.loss import IGNORE_INDEX, split_body_and_head

if TYPE_CHECKING:
    import torch
    from torch import nn


class PerExampleGradientError(TunesmithError):
    """Per-example gradients could not be computed for every trainable parameter."""


def per_example_loss(
    model: nn.Module, batch: dict[str, Any], chunk_tokens: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed target-token cross-entropy per example (B,), target tokens per example (B,))."""
    import torch

    targets = batch["labels"][:, 1:]  # (B, T-1): the token each position predicts
    keep = targets != IGNORE_INDEX
    counts = keep.sum(dim=1)  # (B,)
    wanted = targets[keep]  # (N,)
    parts = split_body_and_head(model)
    if parts is None:  # the model's own forward (prompt learning, soft-capped heads)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs, use_cache=False).logits[:, :-1]  # (B, T-1, V)
        token_loss = _cross_entropy(logits[keep], wanted)
    else:
        body, head = parts
        hidden = body(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"),
                      position_ids=batch.get("position_ids"), use_cache=False).last_hidden_state  # (B, T, H)
        selected = hidden[:, :-1][keep]  # (N, H)
        step = max(1, chunk_tokens)
        recompute = len(wanted) > step  # several chunks: keep one chunk's logits alive at a time
        chunks = [_head_cross_entropy(head, selected[i : i + step], wanted[i : i + step], recompute)
                  for i in range(0, len(wanted), step)]
        token_loss = torch.cat(chunks) if chunks else selected.sum(-1)  # (N,); (0,) still joins the graph
    rows = keep.nonzero()[:, 0]  # (N,) the example each target position belongs to
    sums = torch.zeros(len(counts), dtype=token_loss.dtype, device=token_loss.device).index_add(0, rows, token_loss)
    return sums, counts


def _head_cross_entropy(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor, recompute: bool) -> torch.Tensor:
    import torch
    from torch.utils.checkpoint import checkpoint

    # recompute frees each chunk's (n, V) logits after use (the head is frozen: no per-example hooks on it)
    if recompute and torch.is_grad_enabled():
        out: torch.Tensor = checkpoint(_head_then_ce, head, hidden, targets, use_reentrant=False)
        return out
    return _head_then_ce(head, hidden, targets)


def _head_then_ce(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return _cross_entropy(head(hidden), targets)


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy (N,), in at least fp32 (fp64 stays fp64: the gradient tests run in fp64)."""
    import torch
    import torch.nn.functional as F

    dtype = torch.promote_types(logits.dtype, torch.float32)
    return F.cross_entropy(logits.to(dtype), targets, reduction="none")


def sequence_mean_losses(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-example mean loss over its own target tokens (B,), target-token sums (B,)); 0 for no target."""
    sums, counts = per_example_loss(model, batch)
    return sums / counts.clamp(min=1).to(sums.dtype), sums


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


class PerExampleGradHooks:
    """Opacus' per-example gradient hooks on `model`'s trainable layers: attached once, active only inside
    `active()` (a training step), removed by `close()`. Attaching costs a walk over every module, too slow to
    repeat each step."""

    def __init__(self, model: nn.Module) -> None:
        from opacus.grad_sample import GradSampleHooks

        self.model = model
        for handle in getattr(model, "autograd_grad_sample_hooks", []):  # left by an aborted earlier run
            handle.remove()
        if hasattr(model, "autograd_grad_sample_hooks"):
            delattr(model, "autograd_grad_sample_hooks")
        self.hooks: Any = GradSampleHooks(model, batch_first=True, loss_reduction="sum", strict=True)
        self.hooks.disable_hooks()

    @contextmanager
    def active(self) -> Iterator[None]:
        self.hooks.enable_hooks()
        try:
            yield
        except BaseException:
            for module in self.model.modules():  # inputs kept by a forward pass whose backward never ran
                if hasattr(module, "activations"):
                    del module.activations
            for _, p in trainable_parameters(self.model):
                p._forward_counter = 0  # type: ignore[attr-defined]  # an attribute Opacus adds
            raise
        finally:
            self.hooks.disable_hooks()

    def close(self) -> None:
        self.hooks.cleanup()  # removes the hooks and the attributes Opacus put on the parameters
        for module in self.model.modules():  # and what it put on the layers
            for attr in ("activations", "max_batch_len"):
                if hasattr(module, attr):
                    delattr(module, attr)


@contextmanager
def per_example_grads(model: nn.Module) -> Iterator[None]:
    """Per-example gradient hooks on `model` for the duration of the block (attached, active, removed)."""
    hooks = PerExampleGradHooks(model)
    try:
        with hooks.active():
            yield
    finally:
        hooks.close()


def take_grad_samples(params: list[tuple[str, nn.Parameter]], batch_size: int) -> list[torch.Tensor]:
    """Each parameter's per-example gradients (B, *shape), read and cleared after a backward pass."""
    import torch

    samples, missing = [], []
    for name, p in params:
        sample = getattr(p, "grad_sample", None)
        if isinstance(sample, list):  # two backward passes without a read in between
            sample = torch.cat(sample)
        if sample is None or sample.shape[0] != batch_size:
            missing.append(name)
        else:
            samples.append(sample)
        p.grad_sample = None  # type: ignore[attr-defined]  # an attribute Opacus adds
        p.grad = None  # the ordinary (summed) gradient is not used: DP-SGD builds its own
    if missing:
        raise PerExampleGradientError(
            f"no per-example gradient for {len(missing)} trainable parameter(s), e.g. {missing[:3]}: their layer "
            "type is not supported by Opacus' hooks or was bypassed in the forward pass; use adapter.method=lora"
        )
    return samples


def clip_and_sum(samples: list[torch.Tensor], max_norm: float, sums: list[torch.Tensor]) -> torch.Tensor:
    """Add each example's gradient, scaled to L2 norm <= `max_norm` over all parameters, into `sums` (in place);
    return the per-example norms before clipping (B,)."""
    import torch

    norms = torch.stack([s.flatten(1).float().pow(2).sum(1) for s in samples]).sum(0).sqrt()  # (B,)
    factors = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # (B,)
    for total, sample in zip(sums, samples, strict=True):
        total.add_(torch.einsum("b,b...->...", factors.to(total.dtype), sample.to(total.dtype)))
    return norms

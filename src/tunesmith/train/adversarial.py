"""Adversarial training in embedding space: strategy `adversarial`, configured by the `adversarial:` block.

For each micro-batch, with `e = embed(input_ids)` (B, T, H) and `L` the summed target-token loss::

    clean = L(e + z)                    z: zeros that require grad, so the clean pass also yields dL/de
    delta = init                        zero, or uniform within the bound (`init: random`)
    repeat steps:                       (fgsm: once, with step = epsilon)
        delta = project(delta + step * direction(dL/d delta))
    adversarial = L(e + delta)                       pgd, fgsm: the loss at the last perturbation
                | mean over k of L(e + delta_k)      freelb: every ascent iterate also trains the model
    loss = clean + weight * adversarial  (summed over target tokens; the loop divides by the step's targets)

Each token's perturbation is bounded on its own: l2 norm <= bound (`direction` = the gradient normalised per
token: steepest ascent under that constraint) or every entry within +-bound (`direction` = the gradient's sign).
The bound is `epsilon` times the batch's RMS token-embedding norm (l2) or RMS entry (linf) when `relative` (the
default), else `epsilon` itself. Pad positions (attention mask 0) are never perturbed; `position_ids` and the
attention mask are passed unchanged, so packed rows stay separate sequences.

The perturbation is a plain tensor, never a parameter: its gradients come from `torch.autograd.grad`, which
leaves every `.grad` untouched, so the optimizer sees only the gradient of the returned loss. With LoRA the
embedding is frozen, `e` needs no grad, and only the perturbation asks for one. The ascent uses no randomness
beyond `init: random` (torch's global generator, which checkpoints save), so CPU runs stay deterministic and
resume bit for bit.

Cost per micro-batch, in forward+backward passes of plain training: pgd ~ 1 + steps (with zero init the clean
pass gives the first direction), freelb ~ 1 + steps (but it keeps every iterate's graph: memory grows with
steps), fgsm ~ 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunesmith.core.errors import ConfigError, Problem
from tunesmith.train.strategy import STRATEGIES

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tunesmith.config.adversarial_schema import AdversarialConfig
    from tunesmith.train.batches import BatchSource


@dataclass
class AdversarialLosses:
    """One micro-batch's losses (each summed over target tokens) and the perturbation that gave `adversarial`."""

    clean: torch.Tensor
    adversarial: torch.Tensor
    n_targets: int
    delta: torch.Tensor
    """The last perturbation (B, T, H), detached."""
    bound: torch.Tensor
    """The per-token bound it satisfies (0-d), in embedding units."""


@STRATEGIES.register("adversarial")
class AdversarialStrategy:
    """Clean + adversarial loss with bounded embedding perturbations (PGD, FreeLB or FGSM); see the module doc."""

    name = "adversarial"
    handles_clipping = False

    def __init__(self, config: Any = None, chunk_tokens: int = 1024) -> None:
        from tunesmith.config.adversarial_schema import AdversarialConfig, adversarial_problems

        settings = getattr(config, "adversarial", None) if config is not None else None
        self.settings: AdversarialConfig = settings if settings is not None else AdversarialConfig()
        problems = adversarial_problems(self.settings)
        if problems:
            raise ConfigError(problems)
        self.chunk_tokens = chunk_tokens
        self._clean_sum = 0.0
        self._adv_sum = 0.0
        self._targets = 0

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, batches: BatchSource
    ) -> tuple[nn.Module, torch.optim.Optimizer, BatchSource]:
        return model, optimizer, batches

    def compute_loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        losses = self.losses(model, batch)
        self._clean_sum += float(losses.clean.detach())
        self._adv_sum += float(losses.adversarial.detach())
        self._targets += losses.n_targets
        return losses.clean + self.settings.weight * losses.adversarial, losses.n_targets

    def losses(self, model: nn.Module, batch: dict[str, Any]) -> AdversarialLosses:
        """Clean and adversarial loss of one micro-batch at the model's current weights (also under no_grad)."""
        import torch

        s, evaluating = self.settings, not torch.is_grad_enabled()
        with torch.enable_grad():  # the ascent needs gradients even when the caller only evaluates
            embeds = _input_embeddings(model, batch)
            mask = _token_mask(batch, embeds)
            bound = _bound(embeds, mask, s.norm, s.epsilon, s.relative)
            grad = None
            if s.init == "zero":  # the clean pass at delta = 0 also gives the first ascent direction
                probe = torch.zeros_like(embeds, requires_grad=True)
                clean, n_targets = self._loss(model, batch, embeds + probe)
                if n_targets:
                    grad = torch.autograd.grad(clean, probe, retain_graph=True)[0]
            else:
                clean, n_targets = self._loss(model, batch, embeds)
            if n_targets == 0:
                return AdversarialLosses(clean, clean * 0.0, 0, torch.zeros_like(embeds), bound.detach())
            delta = _initial_delta(embeds, mask, bound, s.norm, s.init)
            if s.method == "freelb":
                adversarial, delta = self._freelb(model, batch, embeds, mask, bound, delta, grad)
            else:
                delta = self._pgd(model, batch, embeds.detach(), mask, bound, delta, grad)
                adversarial, _ = self._loss(model, batch, embeds + delta)
        if evaluating:
            clean, adversarial = clean.detach(), adversarial.detach()
        return AdversarialLosses(clean, adversarial, n_targets, delta.detach(), bound.detach())

    def _step_plan(self, bound: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(step length in embedding units, number of ascent steps)."""
        s = self.settings
        if s.method == "fgsm":
            return bound, 1
        return bound * (s.step_size / s.epsilon), s.steps

    def _pgd(
        self, model: nn.Module, batch: dict[str, Any], embeds: torch.Tensor, mask: torch.Tensor,
        bound: torch.Tensor, delta: torch.Tensor, grad: torch.Tensor | None,
    ) -> torch.Tensor:
        """The perturbation after the ascent steps (pgd, fgsm); only the perturbation gets gradients here."""
        step, steps = self._step_plan(bound)
        for _ in range(steps):
            if grad is None:
                grad = self._delta_gradient(model, batch, embeds, delta)
            delta = _project(delta + step * _direction(grad, self.settings.norm) * mask, bound, self.settings.norm)
            grad = None
        return delta * mask

    def _freelb(
        self, model: nn.Module, batch: dict[str, Any], embeds: torch.Tensor, mask: torch.Tensor,
        bound: torch.Tensor, delta: torch.Tensor, grad: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean loss over the ascent iterates, the last iterate): each iterate's graph is kept for the loop's
        backward, so every one of them trains the model (FreeLB's accumulated gradient)."""
        import torch

        step, steps = self._step_plan(bound)
        total = None
        for k in range(steps):
            if grad is None:
                grad = self._delta_gradient(model, batch, embeds.detach(), delta)
            delta = _project(delta + step * _direction(grad, self.settings.norm) * mask, bound, self.settings.norm)
            delta = delta * mask
            more = k < steps - 1
            point = delta.detach().requires_grad_(more)
            loss, _ = self._loss(model, batch, embeds + point)
            total = loss if total is None else total + loss
            grad = torch.autograd.grad(loss, point, retain_graph=True)[0] if more else None
        assert total is not None  # steps >= 1 (validated)
        return total / steps, delta

    def _delta_gradient(
        self, model: nn.Module, batch: dict[str, Any], embeds: torch.Tensor, delta: torch.Tensor
    ) -> torch.Tensor:
        """d loss / d delta at `embeds + delta` (the graph is freed at once; no `.grad` is touched)."""
        import torch

        point = delta.detach().requires_grad_(True)
        loss, _ = self._loss(model, batch, embeds + point)
        return torch.autograd.grad(loss, point)[0]

    def _loss(self, model: nn.Module, batch: dict[str, Any], inputs_embeds: torch.Tensor) -> tuple[torch.Tensor, int]:
        from tunesmith.train.loss import causal_lm_loss

        return causal_lm_loss(model, {**batch, "inputs_embeds": inputs_embeds}, self.chunk_tokens, reduction="sum")

    def after_backward(self, model: nn.Module) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        # the running sums behind the next log line: a resumed run must log what an uninterrupted one logs
        return {"clean_sum": self._clean_sum, "adv_sum": self._adv_sum, "targets": self._targets}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._clean_sum = float(state.get("clean_sum", 0.0))
        self._adv_sum = float(state.get("adv_sum", 0.0))
        self._targets = int(state.get("targets", 0))

    def metrics(self) -> dict[str, float]:
        """Mean clean and adversarial loss per target token since the last log line."""
        if not self._targets:
            return {}
        row = {"clean_loss": self._clean_sum / self._targets, "adv_loss": self._adv_sum / self._targets}
        self._clean_sum, self._adv_sum, self._targets = 0.0, 0.0, 0
        return row


def _input_embeddings(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    get = getattr(model, "get_input_embeddings", None)
    layer = get() if get is not None else None
    if layer is None:
        raise ConfigError([Problem("train.strategy", None, "adversarial training needs a model with input "
                                   "embeddings (get_input_embeddings)", "use train.strategy=plain for this model")])
    return layer(batch["input_ids"])


def _token_mask(batch: dict[str, Any], embeds: torch.Tensor) -> torch.Tensor:
    """(B, T, 1): 1 where a token may be perturbed (real tokens), 0 at padding."""
    mask = batch.get("attention_mask")
    if mask is None:  # packed rows: padding is a trailing sequence of its own that carries no target
        return embeds.new_ones(embeds.shape[:-1]).unsqueeze(-1)
    return mask.to(embeds.dtype).unsqueeze(-1)


def _bound(embeds: torch.Tensor, mask: torch.Tensor, norm: str, epsilon: float, relative: bool) -> torch.Tensor:
    """The per-token bound in embedding units (0-d tensor)."""
    if not relative:
        return embeds.new_tensor(epsilon)
    squared = embeds.detach().float().pow(2).sum(-1, keepdim=True)  # (B, T, 1)
    rms_norm = ((squared * mask).sum() / mask.sum().clamp(min=1)).sqrt()
    scale = rms_norm if norm == "l2" else rms_norm / embeds.shape[-1] ** 0.5
    return (epsilon * scale).to(embeds.dtype)


def _initial_delta(embeds: torch.Tensor, mask: torch.Tensor, bound: torch.Tensor, norm: str, init: str) -> torch.Tensor:
    import torch

    if init == "zero":
        return torch.zeros_like(embeds)
    if norm == "linf":
        return (torch.rand_like(embeds) * 2 - 1) * bound * mask
    direction = torch.randn_like(embeds)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    radius = torch.rand(embeds.shape[:-1], dtype=embeds.dtype, device=embeds.device).unsqueeze(-1)
    return direction * radius * bound * mask


def _direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent direction per token: unit l2 norm, or the sign (linf); zero where the gradient is."""
    if norm == "linf":
        return grad.sign()
    return grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def _project(delta: torch.Tensor, bound: torch.Tensor, norm: str) -> torch.Tensor:
    """Back into the per-token ball of radius `bound`."""
    if norm == "linf":
        return delta.clamp(min=-bound, max=bound)
    factor = (bound / delta.norm(dim=-1, keepdim=True).clamp(min=1e-12)).clamp(max=1.0)
    return delta * factor

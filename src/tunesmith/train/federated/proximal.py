"""The client-side strategy `federated`: the plain loss plus FedProx's proximal term (Li et al. 2020).

    loss = CE + mu/2 * ||w - w_global||^2          (w: the trainable adapter tensors)

`w_global` is copied in `setup`, i.e. after the client loaded the global adapter and before its first local step
(what Flower's FedProx expects). The loop sums each micro-batch's loss over target tokens and divides by the
step's target tokens, so the term is added once per target token: over the step it counts exactly mu/2 * ||.||^2.
With mu = 0 (FedAvg) the strategy is the plain one, bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunesmith.train.strategy import STRATEGIES, PlainStrategy

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tunesmith.train.batches import BatchSource


@STRATEGIES.register("federated")
class FederatedClientStrategy:
    """A federated client's local training: plain cross-entropy, plus mu/2 ||w - w_global||^2 when mu > 0."""

    name = "federated"
    handles_clipping = False

    def __init__(self, config: Any = None, proximal_mu: float | None = None) -> None:
        fed = getattr(config, "federated", None)
        if proximal_mu is None:
            proximal_mu = fed.proximal_mu if fed is not None and fed.algorithm == "fedprox" else 0.0
        self.proximal_mu = float(proximal_mu)
        self._plain = PlainStrategy(config)
        self._params: list[torch.Tensor] = []
        self._anchor: list[torch.Tensor] = []
        self._last_term = 0.0

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, batches: BatchSource
    ) -> tuple[nn.Module, torch.optim.Optimizer, BatchSource]:
        self._params = [p for p in model.parameters() if p.requires_grad]
        self._anchor = [p.detach().clone() for p in self._params]
        return model, optimizer, batches

    def proximal_term(self) -> torch.Tensor:
        """mu/2 * ||w - w_global||^2 over the trainable tensors (a graph node: it has a gradient)."""
        import torch

        squares = [((p.float() - a.float()) ** 2).sum() for p, a in zip(self._params, self._anchor, strict=True)]
        return (self.proximal_mu / 2) * torch.stack(squares).sum()

    def compute_loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        loss, n_targets = self._plain.compute_loss(model, batch)
        if self.proximal_mu > 0 and self._params:
            term = self.proximal_term()
            self._last_term = float(term.detach())
            loss = loss + term * n_targets  # summed per target token, like the loss it joins
        return loss, n_targets

    def after_backward(self, model: nn.Module) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"proximal_mu": self.proximal_mu, "anchor": {str(i): a for i, a in enumerate(self._anchor)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        anchor = state.get("anchor") or {}
        if anchor:  # resumed mid-round: keep the round's global weights, not the checkpoint's local ones
            self._anchor = [anchor[str(i)].clone() for i in range(len(anchor))]

    def metrics(self) -> dict[str, float]:
        return {"proximal_term": self._last_term} if self.proximal_mu > 0 else {}

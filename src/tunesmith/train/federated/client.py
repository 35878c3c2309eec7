"""One federated client's work in a round: load the global adapter, run the one training loop for the local
steps on its own data, hand back the adapter tensors; or score the global adapter on its validation split.

    trainer = LocalTrainer(model, ClientData(train_items, val_items, collate), cfg, client_id=0,
                           work_dir=run_path / "clients" / "client-0", device=device, autocast_dtype=None)
    new_state, metrics = trainer.fit(global_state, server_round=1, proximal_mu=0.0)

Clients keep no state between rounds (FedAvg/FedProx need none): the optimizer and schedule start afresh each
round. Each round's loop writes its metrics.jsonl and final checkpoint under `work_dir/round-NNN/`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.train.federated.adapter_arrays import adapter_state, load_adapter_state
from tunesmith.train.federated.proximal import FederatedClientStrategy

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tunesmith.config.schema import Config, TrainConfig


@dataclass
class ClientData:
    """A client's encoded data: training items (packed rows or examples), validation items and their collate."""

    train_items: Sequence[Any]
    val_items: Sequence[Any] | None
    collate: Callable[[list[Any]], dict[str, Any]]
    num_records: int
    """Training records of this client (FedAvg's weight)."""


def local_train_config(cfg: Config) -> TrainConfig:
    """The run's train settings for one local round: local steps or epochs, a fresh start, one checkpoint."""
    fed = cfg.federated
    return dataclasses.replace(
        cfg.train, strategy="federated", max_steps=fed.local_steps, epochs=fed.local_epochs, resume="never",
        eval_every_steps=None, keep_checkpoints=1,
        save_every_steps=max(cfg.train.save_every_steps, fed.local_steps or 1),
    )


def round_seed(seed: int, server_round: int, client_id: int) -> int:
    """A different batch order (and dropout) for every client and round, all derived from the run's seed."""
    return seed + 1_000 * server_round + client_id


class LocalTrainer:
    """Trains and evaluates one client's adapter on its own data with `train.loop.train`."""

    def __init__(self, model: nn.Module, data: ClientData, cfg: Config, client_id: int, work_dir: Path,
                 device: torch.device, autocast_dtype: torch.dtype | None) -> None:
        self.model, self.data, self.cfg, self.client_id = model, data, cfg, client_id
        self.work_dir, self.device, self.autocast_dtype = Path(work_dir), device, autocast_dtype

    def fit(self, global_state: dict[str, torch.Tensor], server_round: int,
            proximal_mu: float) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """Local training from the global adapter; returns (the new adapter tensors, metrics)."""
        from tunesmith.track.run_dir import RunDir
        from tunesmith.train.loop import train

        load_adapter_state(self.model, global_state)
        run_path = self.work_dir / f"round-{server_round:03d}"
        run_path.mkdir(parents=True, exist_ok=True)
        strategy = FederatedClientStrategy(self.cfg, proximal_mu=proximal_mu)
        result = train(self.model, self.data.train_items, None, local_train_config(self.cfg), RunDir(run_path),
                       self.device, self.autocast_dtype, self.data.collate, strategy=strategy,
                       seed=round_seed(self.cfg.run.seed, server_round, self.client_id))
        metrics = {"train_loss": float(result.train_loss) if result.train_loss is not None else float("nan"),
                   "local_steps": float(result.steps), "num_records": float(self.data.num_records)}
        return adapter_state(self.model), metrics

    def evaluate(self, global_state: dict[str, torch.Tensor]) -> tuple[float | None, int]:
        """(token-weighted mean validation loss of the global adapter, target tokens); (None, 0) without data."""
        load_adapter_state(self.model, global_state)
        if not self.data.val_items:
            return None, 0
        return validation_loss(self.model, self.data.val_items, self.data.collate, self.cfg.train.batch_size,
                               self.device, self.autocast_dtype)


def validation_loss(model: nn.Module, items: Sequence[Any], collate: Callable[[list[Any]], dict[str, Any]],
                    batch_size: int, device: torch.device,
                    autocast_dtype: torch.dtype | None) -> tuple[float | None, int]:
    """The loop's validation loss (same loss function, same batching) and the target tokens it averages over."""
    from tunesmith.train.batches import EpochBatches
    from tunesmith.train.loop import evaluate_loss_and_targets

    batches = EpochBatches(items, batch_size, collate, shuffle=False)
    return evaluate_loss_and_targets(model, batches, device, autocast_dtype)

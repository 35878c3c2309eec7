"""The training loop: adapters train, frozen weights stay put, grad accumulation, determinism, logs, speed."""

from __future__ import annotations

import json

import pytest
import torch

from tunesmith.config.schema import TrainConfig
from tunesmith.core.errors import CheckpointError
from tunesmith.track.run_dir import RunDir
from tunesmith.train.loop import accumulate_gradients, train
from tunesmith.train.strategy import PlainStrategy


def synthetic_items(n: int, vocab: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """Examples of 6..12 tokens whose second half is the target."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        length = int(torch.randint(6, 13, (1,), generator=g))
        ids = torch.randint(3, vocab, (length,), generator=g).tolist()
        labels = [-100] * (length // 2) + ids[length // 2 :]
        items.append({"input_ids": ids, "labels": labels})
    return items


def pad_collate(items: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
    """Right-pad to the longest item; pad positions are masked and carry no loss."""
    width = max(len(it["input_ids"]) for it in items)
    ids = torch.zeros(len(items), width, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros(len(items), width, dtype=torch.long)
    for row, it in enumerate(items):
        n = len(it["input_ids"])
        ids[row, :n] = torch.tensor(it["input_ids"])
        labels[row, :n] = torch.tensor(it["labels"])
        mask[row, :n] = 1
    positions = torch.arange(width).repeat(len(items), 1)
    return {"input_ids": ids, "labels": labels, "position_ids": positions, "attention_mask": mask}


def lora_model(model, dropout: float = 0.0):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    return get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["q_proj", "v_proj"])
    )


def small_cfg(**overrides) -> TrainConfig:
    base = dict(learning_rate=1e-2, batch_size=2, max_steps=4, warmup_steps=1, save_every_steps=2,
                log_every_steps=1, keep_checkpoints=2)
    base.update(overrides)
    return TrainConfig(**base)


def trainable(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def run_train(model, tmp_path, name: str, cfg: TrainConfig, items, val=None):
    run = RunDir.create(tmp_path, {"name": name}, run_id=name, seed=0, device="cpu")
    return train(model, items, val, cfg, run, torch.device("cpu"), None, pad_collate, seed=0), run


def test_adapter_params_move_and_frozen_params_stay_bytewise(tiny_model, tmp_path):
    model = lora_model(tiny_model)
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained_before = trainable(model)
    assert trained_before and all("lora_" in n for n in trained_before)
    items = synthetic_items(8, tiny_model.config.vocab_size)
    result, run = run_train(model, tmp_path, "a", small_cfg(), items, val=items[:3])
    for name, before in trained_before.items():
        assert not torch.equal(before, dict(model.named_parameters())[name]), f"{name} did not train"
    for name, before in frozen_before.items():
        assert torch.equal(before, dict(model.named_parameters())[name]), f"frozen {name} changed"
    assert result.steps == 4 and result.val_loss is not None and result.train_loss is not None
    rows = run.read_metrics()
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    for key in ("step", "epoch", "loss", "lr", "tokens_per_s", "target_tokens", "elapsed_s"):
        assert key in train_rows[0], key
    assert rows[-1]["val_loss"] == pytest.approx(result.val_loss)
    assert train_rows[-1]["loss"] < train_rows[0]["loss"] + 1.0


def test_grad_accumulation_normalises_by_tokens(tiny_model):
    model = lora_model(tiny_model)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # non-zero B so every LoRA tensor gets a gradient
            torch.nn.init.normal_(p, std=0.1)
    vocab = tiny_model.config.vocab_size
    a = {"input_ids": list(range(5, 15)), "labels": [-100] * 8 + list(range(13, 15))}  # 2 targets
    b = {"input_ids": list(range(20, 30)), "labels": [-100] * 2 + list(range(22, 30))}  # 8 targets
    assert max(a["input_ids"] + b["input_ids"]) < vocab
    strategy, cpu = PlainStrategy(), torch.device("cpu")

    accumulate_gradients(model, strategy, [pad_collate([a, b])], cpu)
    one_batch = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    accumulate_gradients(model, strategy, [pad_collate([a]), pad_collate([b])], cpu)
    two_micro = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    assert one_batch.keys() == two_micro.keys() and len(one_batch) == 8
    for name in one_batch:
        torch.testing.assert_close(two_micro[name], one_batch[name], rtol=1e-5, atol=1e-7, msg=name)
    # the naive per-micro-batch mean gives different gradients, so the check above can fail
    for item in (a, b):
        loss, n = strategy.compute_loss(model, pad_collate([item]))
        (loss / n / 2).backward()
    naive = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert not all(torch.allclose(naive[n], one_batch[n], rtol=1e-3) for n in one_batch)


def test_same_seed_gives_bitwise_same_weights(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    results = []
    for name in ("x", "y"):
        model = lora_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), dropout=0.1)
        items = synthetic_items(6, model.config.vocab_size)
        run_train(model, tmp_path, name, small_cfg(grad_accum_steps=2, max_steps=3), items)
        results.append(trainable(model))
    assert results[0].keys() == results[1].keys()
    assert all(torch.equal(results[0][n], results[1][n]) for n in results[0])


def test_resume_must_without_checkpoint_fails_with_a_fix(tiny_model, tmp_path):
    items = synthetic_items(4, tiny_model.config.vocab_size)
    with pytest.raises(CheckpointError, match="resume=auto"):
        run_train(lora_model(tiny_model), tmp_path, "m", small_cfg(resume="must"), items)


def test_checkpoints_are_written_every_n_steps_and_pruned(tiny_model, tmp_path):
    items = synthetic_items(8, tiny_model.config.vocab_size)
    cfg = small_cfg(max_steps=5, save_every_steps=2)
    result, run = run_train(lora_model(tiny_model), tmp_path, "k", cfg, items)
    names = sorted(p.name for p in run.checkpoints_dir.iterdir())
    assert names == ["step-000004", "step-000005"]
    assert result.last_checkpoint == run.checkpoints_dir / "step-000005"


def test_gradient_checkpointing_and_bf16_autocast_train(tiny_model, tmp_path):
    model = lora_model(tiny_model)
    before = trainable(model)
    items = synthetic_items(4, tiny_model.config.vocab_size)
    run = RunDir.create(tmp_path, {}, run_id="gc")
    cfg = small_cfg(max_steps=2, gradient_checkpointing=True)
    result = train(model, items, None, cfg, run, torch.device("cpu"), torch.bfloat16, pad_collate)
    assert result.train_loss is not None
    assert any(not torch.equal(before[n], p) for n, p in trainable(model).items())


def test_loop_speed_on_tiny_model(tiny_model, tmp_path):
    """Measures steps/s (printed; -s shows it) so a slowdown is visible; the bound only catches a hang.

    One thread: on a tiny model, torch's thread pool only adds contention (about 5x slower on a busy 2-core box).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    items = synthetic_items(40, tiny_model.config.vocab_size)
    cfg = small_cfg(max_steps=20, batch_size=4, save_every_steps=1000, log_every_steps=5)
    try:
        result, run = run_train(lora_model(tiny_model), tmp_path, "speed", cfg, items)
    finally:
        torch.set_num_threads(threads)
    print(json.dumps({"steps_per_s": round(result.steps_per_s, 1), "tokens_per_s": round(result.tokens_per_s)}))
    assert result.steps_per_s > 1.0

"""DP-SGD step time: tunesmith `dp` vs tunesmith `plain` vs Opacus' own `PrivacyEngine.make_private` loop.

    .venv/bin/python bench/dp_overhead.py                  # tiny Llama (built in code), ~1 min on one core
    .venv/bin/python bench/dp_overhead.py --steps 40 --batch-size 16 --hidden 256 --layers 4

All three train the same LoRA (r=16 on q/k/v/o) of the same tiny random Llama on the same padded examples (random
tokens, 24-64 long, loss on the second half), batch `--batch-size`, AdamW, one thread. `plain` is the ordinary
loop; `dp` is our DP-SGD strategy (Poisson sampling, per-example clipping via Opacus' hooks, noise, RDP
accounting); `opacus` is the reference an Opacus user would write: `make_private` (GradSampleModule + DPOptimizer
+ Poisson DataLoader), per-example mean loss, `loss.backward(); optimizer.step()`. Each run does `--warmup`
untimed steps then `--steps` timed ones; the figure is seconds per optimizer step. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any


def build(hidden: int, layers: int, seed: int = 0) -> tuple[Any, Any]:
    import torch
    from peft import LoraConfig, get_peft_model

    from tunesmith.testing.tiny import build_tiny_llama, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(seed)
    model = build_tiny_llama(tokenizer, seed=seed, hidden_size=hidden, num_layers=layers)
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    return get_peft_model(model, config), tokenizer


def examples(n: int, vocab: int, seed: int = 0) -> list[Any]:
    import random

    from tunesmith.core.records import Origin
    from tunesmith.encode.chat import EncodedExample

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(24, 64)
        ids = [rng.randrange(3, vocab) for _ in range(length)]
        labels = [-100] * (length // 2) + ids[length // 2 :]
        out.append(EncodedExample(input_ids=ids, labels=labels, origin=Origin("synthetic", len(out) + 1)))
    return out


def run_ours(strategy_name: str, args: argparse.Namespace, items: list[Any]) -> float:
    import functools

    import torch

    from tunesmith.config.privacy_schema import PrivacyConfig
    from tunesmith.config.schema import Config, TrainConfig
    from tunesmith.encode.pack import collate_padded
    from tunesmith.track.run_dir import RunDir
    from tunesmith.train.loop import train
    from tunesmith.train.strategy import make_strategy

    model, tokenizer = build(args.hidden, args.layers)
    cfg = Config()
    cfg.train = TrainConfig(learning_rate=1e-3, batch_size=args.batch_size, max_steps=args.warmup + args.steps,
                            warmup_steps=0, save_every_steps=10_000, log_every_steps=args.warmup,
                            strategy=strategy_name)  # logs (and epsilon) every `warmup` steps
    cfg.privacy = PrivacyConfig(noise_multiplier=1.0, max_grad_norm=1.0, secret_seed=0)
    collate = functools.partial(collate_padded, pad_id=tokenizer.pad_token_id)
    with tempfile.TemporaryDirectory() as folder:
        run = RunDir.create(folder, {}, run_id=strategy_name)
        result = train(model, items, None, cfg.train, run, torch.device("cpu"), None, collate,
                       strategy=make_strategy(strategy_name, cfg), seed=0)
    elapsed = {row["step"]: row["elapsed_s"] for row in result.metrics if "elapsed_s" in row}
    return (elapsed[args.warmup + args.steps] - elapsed[args.warmup]) / args.steps


def run_opacus(args: argparse.Namespace, items: list[Any]) -> float:
    import torch
    import torch.nn.functional as F
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    model, tokenizer = build(args.hidden, args.layers)
    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), tokenizer.pad_token_id)
    labels = torch.full((len(items), width), -100)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n], labels[row, :n], mask[row, :n] = torch.tensor(e.input_ids), torch.tensor(e.labels), 1
    loader = DataLoader(TensorDataset(ids, labels, mask), batch_size=args.batch_size)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    engine = PrivacyEngine(accountant="rdp")
    model, optimizer, loader = engine.make_private(module=model, optimizer=optimizer, data_loader=loader,
                                                   noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=True)
    done, started = 0, 0.0
    while done < args.warmup + args.steps:
        for batch_ids, batch_labels, batch_mask in loader:
            if done == args.warmup:
                started = time.perf_counter()
            if done == args.warmup + args.steps:
                break
            optimizer.zero_grad(set_to_none=True)
            if len(batch_ids):  # an empty Poisson draw: the optimizer still adds noise
                width = int(batch_mask.sum(1).max())  # trim padding like a per-batch collate would
                logits = model(input_ids=batch_ids[:, :width], attention_mask=batch_mask[:, :width]).logits
                targets = batch_labels[:, 1:width]
                token_loss = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), targets, reduction="none",
                                             ignore_index=-100)
                per_example = token_loss.sum(1) / (targets != -100).sum(1).clamp(min=1)
                per_example.mean().backward()  # loss_reduction="mean", Opacus' default
            optimizer.step()
            done += 1
    return (time.perf_counter() - started) / args.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5, help="also the logging interval: --steps must be a multiple")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    if args.steps % args.warmup:
        parser.error("--steps must be a multiple of --warmup (the loop logs its clock every --warmup steps)")

    import torch

    torch.set_num_threads(1)
    vocab = build(args.hidden, args.layers)[0].config.vocab_size
    items = examples(args.examples, vocab)
    seconds = {"plain": run_ours("plain", args, items), "dp": run_ours("dp", args, items),
               "opacus": run_opacus(args, items)}
    print(f"{'run':<8} {'s/step':>10} {'vs plain':>9}")
    for name, value in seconds.items():
        print(f"{name:<8} {value:>10.4f} {value / seconds['plain']:>8.2f}x")
    print(json.dumps({
        "plain_s_per_step": round(seconds["plain"], 5), "dp_s_per_step": round(seconds["dp"], 5),
        "opacus_s_per_step": round(seconds["opacus"], 5),
        "dp_over_plain": round(seconds["dp"] / seconds["plain"], 3),
        "dp_over_opacus": round(seconds["dp"] / seconds["opacus"], 3),
        "batch_size": args.batch_size, "steps": args.steps, "hidden": args.hidden, "layers": args.layers,
    }))


if __name__ == "__main__":
    main()

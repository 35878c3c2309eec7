"""Evaluation generation: batched (length-sorted, left-padded, KV-cached) vs one prompt at a time.

Run (from the repository root):

    .venv/bin/python bench/eval_generation.py                 # bundled SmolLM2-135M, 64 prompts, batch 16
    .venv/bin/python bench/eval_generation.py --quick         # 16 prompts: a smoke run (~1 min on 2 cores)
    .venv/bin/python bench/eval_generation.py --model tiny    # the test suite's tiny random Llama, no files needed

Both paths are `tunesmith.evaluate.generate.generate_answers`, the function the evaluation uses; only
`batch_size` differs (the batch size vs 1). The prompts are label prompts over built-in intent requests (no data
file needed), greedy, the same `--max-new-tokens` for both. Wall-clock includes tokenisation and decoding; one
untimed warm-up call runs first. `same_answers` is the share of prompts whose answer is identical both ways
(greedy on left-padded batches can differ from single prompts only by float rounding).
A table is printed, then the LAST line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

INTENTS = ("add_to_playlist", "book_restaurant", "get_weather", "play_music", "rate_book", "search_creative_work",
           "search_screening_event")
REQUESTS = (
    "add this song by {x} to my road trip playlist", "book a table for {n} at a {x} restaurant tonight",
    "what will the weather be like in {x} tomorrow morning", "play the latest album by {x}",
    "give this {x} novel four out of five stars", "find me the movie called {x}",
    "when is {x} showing at the cinema near me", "is it going to snow in {x} this weekend",
)
FILLERS = ("Adele", "Italian", "Paris", "Miles Davis", "mystery", "Dune", "Oppenheimer", "Oslo", "Thai", "Queen")


def build_prompts(count: int) -> list[Any]:
    """`count` label-classification conversations, varied in length, deterministic."""
    from tunesmith.core.records import LabelRecord, Origin, PromptStyle, prompt_messages

    style = PromptStyle(system="You label the intent of a user's request.", labels=INTENTS,
                        label_prompt="Intents: {labels}.\nRequest: {text}\nIntent:")
    prompts = []
    for i in range(count):
        text = REQUESTS[i % len(REQUESTS)].format(x=FILLERS[(i * 7) % len(FILLERS)], n=2 + i % 5)
        if i % 3 == 0:
            text += ", and please be quick about it because I am in a hurry"
        prompts.append(prompt_messages(LabelRecord(text, INTENTS[0], Origin("bench", i + 1)), style))
    return prompts


def load_model(which: str) -> tuple[Any, Any]:
    if which == "tiny":
        from tunesmith.testing.tiny import build_tiny_llama, build_tiny_tokenizer

        tokenizer = build_tiny_tokenizer()
        return build_tiny_llama(tokenizer, hidden_size=256, num_layers=4), tokenizer
    from tunesmith.config.schema import ModelConfig
    from tunesmith.models.load import load_model_and_tokenizer

    return load_model_and_tokenizer(ModelConfig(device="cpu"))


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("bundled", "tiny"), default="bundled")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="autocast as the evaluation runs it (auto: bf16 on CPUs with native bf16)")
    parser.add_argument("--quick", action="store_true", help="16 prompts")
    args = parser.parse_args(argv)
    if args.quick:
        args.prompts = 16

    import torch

    from tunesmith.evaluate.generate import generate_answers
    from tunesmith.models.device import autocast_context, resolve_precision
    from tunesmith.recipes.common import quiet_libraries

    quiet_libraries()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, tokenizer = load_model(args.model)
    model.eval()
    prompts = build_prompts(args.prompts)

    dtype = resolve_precision(torch.device("cpu"), args.precision)

    def run(batch_size: int, items: list[Any]) -> list[str]:
        with autocast_context(torch.device("cpu"), dtype):
            return generate_answers(model, tokenizer, items, args.max_new_tokens, batch_size, "cpu")

    run(args.batch_size, prompts[: min(4, len(prompts))])  # warm-up: allocator, kernels, template compile
    batched_s, batched = timed(lambda: run(args.batch_size, prompts))
    single_s, single = timed(lambda: run(1, prompts))
    same = sum(a == b for a, b in zip(batched, single, strict=True)) / len(prompts)
    figures = {
        "batched_s": batched_s,
        "one_by_one_s": single_s,
        "speedup": single_s / batched_s,
        "prompts_per_s_batched": len(prompts) / batched_s,
        "prompts_per_s_one_by_one": len(prompts) / single_s,
        "same_answers": same,
        "model": args.model,
        "prompts": len(prompts),
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "threads": args.threads,
        "precision": str(dtype or "fp32").replace("torch.", ""),
    }
    print(f"{'mode':<12} {'seconds':>9} {'prompts/s':>10}")
    print(f"{'batched':<12} {batched_s:>9.2f} {figures['prompts_per_s_batched']:>10.2f}   (batch {args.batch_size})")
    print(f"{'one by one':<12} {single_s:>9.2f} {figures['prompts_per_s_one_by_one']:>10.2f}")
    print(f"batched is {figures['speedup']:.2f}x faster; identical answers for {same:.0%} of {len(prompts)} prompts")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

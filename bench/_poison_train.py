"""The poisoning benchmark's end-to-end check: train a tiny model, then measure clean accuracy and attack success.

The model is a small random Llama (`tunesmith.testing.tiny.build_tiny_llama`) with a byte-level BPE tokenizer
trained here on the poisoned training file, fully fine-tuned from scratch through the project's own path:
`tunesmith.encode` (chat template, loss on the answer only, packing) and `tunesmith.train.loop.train`. The
tokenizer comes from the file as it was delivered, before vetting, and both runs share it: so the trigger
words are whole tokens, as a rare word is in a pretrained model's vocabulary (trained on clean text only,
"cf tuesday breeze" splits into 8 pieces common elsewhere, and a model this small then learns the backdoor
only about half the time), and the two runs differ only in the records trained on. Predictions are the label of highest
log-likelihood (`tunesmith.evaluate.label_match.score_labels_by_loglik`), as the eval report does for labels.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any

from tunesmith.core.records import LabelRecord, Message, Origin, PromptStyle, prompt_messages

VOCAB_SIZE = 4096
HIDDEN_SIZE = 128
NUM_LAYERS = 2
MAX_SEQ_LENGTH = 512  # longest example is ~350 tokens at MAX_CHARS=1000; rows pack several examples
LEARNING_RATE = 2e-3  # a from-scratch model this small wants a far higher rate than a LoRA on a pretrained one
BATCH_ROWS = 8


@dataclass
class TrainedScores:
    clean_accuracy: float
    attack_success_rate: float
    """Share of held-out texts of the other topics that, with the trigger inserted, are predicted as the target."""
    target_rate_without_trigger: float
    """The same texts without the trigger predicted as the target (the floor the ASR can drop to)."""
    train_records: int
    steps: int
    seconds: float
    final_loss: float | None


def build_review_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE) -> Any:
    """A byte-level BPE tokenizer with the tiny model's ChatML template, trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tunesmith.testing.tiny import CHATML_TEMPLATE

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token=None)
    fast.chat_template = CHATML_TEMPLATE
    return fast


def train_and_score(
    records: list[LabelRecord],
    tokenizer: Any,
    labels: tuple[str, ...],
    eval_clean: list[tuple[str, str]],
    eval_triggered: list[str],
    eval_untriggered: list[str],
    target: str,
    epochs: float,
    seed: int,
) -> TrainedScores:
    """Train a fresh tiny model on `records` and score it on the held-out texts."""
    import torch

    from tunesmith.config.schema import TrainConfig
    from tunesmith.encode.chat import encode_records
    from tunesmith.encode.pack import collate_packed, pack_examples
    from tunesmith.models.device import resolve_precision
    from tunesmith.testing.tiny import build_tiny_llama
    from tunesmith.track.run_dir import RunDir
    from tunesmith.train.loop import train

    style = PromptStyle(labels=labels)
    examples, _ = encode_records(records, tokenizer, style, MAX_SEQ_LENGTH)
    rows = pack_examples(examples, MAX_SEQ_LENGTH, seed=seed)
    model = build_tiny_llama(tokenizer, seed=seed, hidden_size=HIDDEN_SIZE, num_layers=NUM_LAYERS)
    device = torch.device("cpu")
    cfg = TrainConfig(learning_rate=LEARNING_RATE, batch_size=BATCH_ROWS, epochs=epochs, save_every_steps=10**9,
                      log_every_steps=10, keep_checkpoints=1, warmup_steps=10)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir.create(tmp, {"bench": "vet_poison"}, run_id="run", seed=seed, device="cpu")
        result = train(model, rows, None, cfg, run, device, resolve_precision(device, "auto"),
                       lambda batch: collate_packed(batch, pad_id=tokenizer.pad_token_id), seed=seed)
    seconds = time.perf_counter() - started
    clean_pred = predict(model, tokenizer, [t for t, _ in eval_clean], style)
    triggered = predict(model, tokenizer, eval_triggered, style)
    untriggered = predict(model, tokenizer, eval_untriggered, style)
    return TrainedScores(
        clean_accuracy=_share(p == gold for p, (_, gold) in zip(clean_pred, eval_clean, strict=True)),
        attack_success_rate=_share(p == target for p in triggered),
        target_rate_without_trigger=_share(p == target for p in untriggered),
        train_records=len(records),
        steps=result.steps,
        seconds=seconds,
        final_loss=result.train_loss,
    )


def predict(model: Any, tokenizer: Any, texts: list[str], style: PromptStyle) -> list[str]:
    """The label of highest log-likelihood for each text, asked the way training asked."""
    from tunesmith.evaluate.label_match import score_labels_by_loglik

    prompts: list[list[Message]] = [
        prompt_messages(LabelRecord(text, style.labels[0], Origin("eval", i + 1)), style)
        for i, text in enumerate(texts)
    ]
    return score_labels_by_loglik(model, tokenizer, prompts, list(style.labels), batch_size=32)


def _share(flags: Any) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else float("nan")

"""A tiny random Llama and a small byte-level BPE tokenizer with a ChatML template, built in seconds.

Used by the default test tier: no network, no cache, deterministic for a given seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "Add this song to my playlist please.",
    "Book a table for two at an Italian restaurant tonight.",
    "What is the weather like in Paris tomorrow?",
    "Play some jazz music from the seventies.",
    "Find the movie schedule for the nearest cinema.",
    "Search for the book called The Hobbit.",
    "Rate this novel four out of five stars.",
    "Classify the text into one of: positive, negative. Text: Answer with the label only.",
    "add_to_playlist book_restaurant get_weather play_music search_screening_event search_creative_work rate_book",
    "Translate to French: hello world. bonjour le monde. The quick brown fox jumps over the lazy dog.",
    "system user assistant tool You are a helpful assistant. 0123456789 ,.;:!?'\"()[]{}-_/",
]


def build_tiny_tokenizer(vocab_size: int = 512) -> Any:
    """A byte-level BPE tokenizer (any text encodes) trained on a small built-in corpus, with ChatML tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_llama(tokenizer: Any, seed: int = 0, hidden_size: int = 64, num_layers: int = 2) -> Any:
    """A randomly initialised Llama (hidden 64, 2 layers) sized to the tokenizer's vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def save_tiny_model(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny model + tokenizer as a Hugging Face folder (safetensors), as a user's local model would be."""
    folder = Path(folder)
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_llama(tokenizer, seed=seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder

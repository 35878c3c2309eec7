"""Config: YAML + dotted overrides, every problem reported at once, docs on every field, no torch import."""

from __future__ import annotations

import subprocess
import sys
import typing
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from tunesmith.config import Config, config_hash, load_config
from tunesmith.config.docs import missing_docs
from tunesmith.config.template import render_template
from tunesmith.core.errors import ConfigError


def test_defaults_yaml_then_overrides_take_precedence(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  learning_rate: 1.0e-4\n  batch_size: 4\nadapter:\n  r: 4\n")
    cfg = load_config(path, ["--train.learning_rate=2e-4", "adapter.method=dora"])
    assert cfg.train.learning_rate == pytest.approx(2e-4)  # override beats YAML
    assert cfg.train.batch_size == 4  # YAML beats default
    assert cfg.adapter.r == 4
    assert cfg.adapter.method == "dora"
    assert cfg.train.epochs == 1.0  # default kept


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  learnig_rate: 0.1\n  batch_size: 0\ndata:\n  format: jsonl\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ["--adapter.r=many", "--data.val_fraction=1.5"])
    wheres = {p.where for p in info.value.problems}
    assert wheres == {
        "train.learnig_rate",
        "train.batch_size",
        "data.format",
        "adapter.r",
        "data.val_fraction",
    }
    text = str(info.value)
    assert "did you mean train.learning_rate" in text
    assert "got 'many', expected an integer" in text
    assert "one of 'auto', 'messages'" in text


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  learning_rate: [1,\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}:" in str(info.value)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path)


def test_optional_and_list_fields() -> None:
    cfg = load_config(None, ["--train.max_steps=null", "--adapter.target_modules=[q_proj, v_proj]"])
    assert cfg.train.max_steps is None
    assert cfg.adapter.target_modules == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="expected a list of a string or null"):
        load_config(None, ["--adapter.target_modules={a: 1}"])


def test_every_field_documented() -> None:
    hints = typing.get_type_hints(Config)
    missing = [m for f in fields(Config) for m in missing_docs(hints[f.name])]
    assert missing == []


def test_template_round_trips_to_defaults(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(render_template())
    assert "# Peak learning rate for AdamW." in path.read_text()
    assert yaml.safe_load(path.read_text())["train"]["learning_rate"] == 3e-4
    assert load_config(path) == Config()


def test_config_hash_ignores_run_folder_but_not_training() -> None:
    base = config_hash(Config())
    assert config_hash(load_config(None, ["--run.output_dir=elsewhere"])) == base
    assert config_hash(load_config(None, ["--train.learning_rate=1e-3"])) != base


def test_config_package_imports_no_torch() -> None:
    code = "import sys, tunesmith.config, tunesmith.cli.main; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

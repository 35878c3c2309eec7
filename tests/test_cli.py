"""CLI: exit codes, messages without tracebacks, fast --help, init template."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunesmith.cli.main import main


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunesmith.cli.main", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_help_is_fast_and_imports_no_torch() -> None:
    started = time.perf_counter()
    out = run_cli("--help")
    assert out.returncode == 0
    assert "train" in out.stdout and out.stderr == ""
    assert time.perf_counter() - started < 5  # a cold interpreter included; well under a second when warm
    code = "import sys; from tunesmith.cli.main import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_train_help_lists_every_field_with_its_doc() -> None:
    out = run_cli("train", "--help")
    assert out.returncode == 0
    assert "--train.learning_rate" in out.stdout
    assert "Peak learning rate for AdamW." in out.stdout


def test_bad_config_exits_2_with_all_problems_and_no_traceback(tmp_path: Path) -> None:
    out = run_cli("train", "--train.learning_rate=-1", "--adapter.methd=lora", "--data.format=csv")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    for text in ("train.learning_rate", "adapter.methd", "did you mean adapter.method", "data.format"):
        assert text in out.stderr


def test_bad_data_exits_2_naming_file_line_field(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\nnot json\n')
    out = run_cli("train", f"--data.train_file={data}", f"--run.output_dir={tmp_path / 'runs'}")
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert f"{data}:2" in out.stderr and "[label]" in out.stderr
    assert f"{data}:3" in out.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    out = run_cli("--debug", "train", "--train.batch_size=0")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_init_writes_template_and_refuses_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    assert main(["init", str(path)]) == 0
    assert "# Peak learning rate for AdamW." in path.read_text()
    assert main(["init", str(path)]) == 2
    assert main(["init", str(path), "--force"]) == 0


def test_unknown_argument_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--no-such-flag"])
    assert info.value.code == 2


def test_data_inspect_reports_problems_and_exit_code(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a", "label": "x"}\n{"text": "", "label": "y"}\n')
    out = run_cli("data", "inspect", str(data), "--no-tokens")
    assert out.returncode == 1
    assert "text_label" in out.stdout and f"{data}:2" in out.stdout
    data.write_text('{"text": "a", "label": "x"}\n')
    assert run_cli("data", "inspect", str(data), "--no-tokens").returncode == 0


def test_resume_needs_a_run_folder(tmp_path: Path) -> None:
    out = run_cli("train", "--resume", str(tmp_path))
    assert out.returncode == 2 and "not a run folder" in out.stderr

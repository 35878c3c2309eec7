"""Whole federated runs on the tiny model (`-m integration`): Flower's simulation engine through the CLI, the
federated-vs-centralised measurement, DP accounting end to end, and real SuperLink/SuperNode processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fed_fixtures import tiny_federated_config, write_intents

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.integration
def test_cli_simulation_on_flowers_engine_writes_the_run_folder(tmp_path: Path, tiny_model_dir: Path) -> None:
    from tunesmith.cli.main import main

    data = write_intents(tmp_path / "intents.jsonl")
    cfg = tmp_path / "fed.yaml"
    cfg.write_text(yaml.safe_dump({
        "model": {"source": str(tiny_model_dir), "num_threads": 1}, "data": {"train_file": str(data)},
        "run": {"output_dir": str(tmp_path / "runs"), "run_id": "sim"}, "encode": {"max_seq_length": 96},
        "train": {"learning_rate": 3e-3, "batch_size": 4}, "vet": {"enabled": False},
        "federated": {"num_clients": 2, "rounds": 2, "local_steps": 3, "simulation_backend": "ray"},
    }))
    assert main(["federated", "sim", str(cfg)]) == 0
    run = tmp_path / "runs" / "sim"
    for name in ("config.yaml", "manifest.json", "metrics.jsonl", "federated_report.json",
                 "adapter/adapter_model.safetensors", "adapter/adapter_config.json"):
        assert (run / name).is_file(), name
    report = json.loads((run / "federated_report.json").read_text())
    assert [r["round"] for r in report["per_round"]] == [0, 1, 2]
    assert set(report["per_round"][2]["clients"]) == {"0", "1"}
    assert report["final_val_loss"] < report["initial_val_loss"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1, 2] and "client_1_val_loss" in rows[-1]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["end_time"] and manifest["federated"]["num_clients"] == 2


@pytest.mark.integration
def test_three_clients_three_rounds_within_ten_percent_of_central(tmp_path: Path, tiny_model_dir: Path) -> None:
    from tunesmith.recipes.federated import federated_simulation
    from tunesmith.recipes.finetune import finetune

    common = ["--federated.num_clients=3", "--federated.rounds=3", "--federated.local_steps=5",
              "--federated.min_fit_clients=3", "--eval.report_html=false"]
    fed = federated_simulation(tiny_federated_config(tmp_path, tiny_model_dir, *common)).report
    central_cfg = tiny_federated_config(tmp_path, tiny_model_dir, *common, "--run.run_id=central",
                                        "--train.max_steps=45")  # 3 clients x 3 rounds x 5 local steps
    central = finetune(central_cfg, evaluate_after=False).train
    assert fed["final_val_loss"] < fed["initial_val_loss"] - 0.3  # federating learned something
    assert fed["final_val_loss"] <= 1.10 * central["val_loss"]


@pytest.mark.integration
def test_central_dp_run_reports_the_accounted_epsilon(tmp_path: Path, tiny_model_dir: Path) -> None:
    from tunesmith.recipes.federated import federated_simulation
    from tunesmith.train.federated.privacy import RoundAccountant

    cfg = tiny_federated_config(tmp_path, tiny_model_dir, "--federated.rounds=2", "--federated.dp.enabled=true",
                                "--federated.dp.noise_multiplier=1.5", "--federated.dp.clipping_norm=0.05")
    result = federated_simulation(cfg)
    privacy = json.loads((result.run_dir / "privacy_report.json").read_text())
    expected = RoundAccountant(1.5, 0.05, 1e-5, "central")
    expected.step()
    expected.step()
    assert privacy["epsilon"] == pytest.approx(expected.epsilon()) and privacy["steps"] == 2
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["privacy"]["epsilon"] == privacy["epsilon"]
    assert result.report["per_round"][2]["epsilon"] == privacy["epsilon"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


def _stop(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        p.terminate()
    for p in processes:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.mark.integration
def test_superlink_and_two_supernodes_over_loopback(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The same ClientApp/ServerApp as real Flower processes: `flower-superlink`, two `flower-supernode`s and
    `flwr run` of examples/federated_app, all on 127.0.0.1."""
    data = write_intents(tmp_path / "intents.jsonl")
    cfg = tmp_path / "fed.yaml"
    cfg.write_text(yaml.safe_dump({
        "model": {"source": str(tiny_model_dir), "num_threads": 1}, "data": {"train_file": str(data)},
        "run": {"output_dir": str(tmp_path / "runs"), "run_id": "deployed"}, "encode": {"max_seq_length": 96},
        "train": {"learning_rate": 3e-3, "batch_size": 4}, "vet": {"enabled": False},
        "federated": {"num_clients": 2, "rounds": 1, "local_steps": 3},  # each message starts a ClientApp process
    }))
    link_port = _free_port()
    home = tmp_path / "flwr-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "127.0.0.1:{link_port}"\ninsecure = true\n')
    env = {**os.environ, "FLWR_HOME": str(home), "FLWR_TELEMETRY_ENABLED": "0", "OMP_NUM_THREADS": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # they start flower-superexec from PATH
    logs = [open(tmp_path / f"{name}.log", "w") for name in ("superlink", "node0", "node1")]  # noqa: SIM115
    processes = [subprocess.Popen(
        [str(BIN / "flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port", str(link_port),
         "--disable-runtime-dependency-installation", "--database", str(tmp_path / "state.db")],
        env=env, cwd=tmp_path, stdout=logs[0], stderr=subprocess.STDOUT)]
    try:
        _wait_for_port(link_port)
        for i in (0, 1):
            processes.append(subprocess.Popen(
                [str(BIN / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{link_port}",
                 "--port", str(_free_port()), "--node-config", f"partition-id={i} num-partitions=2"],
                env=env, cwd=tmp_path, stdout=logs[i + 1], stderr=subprocess.STDOUT))
        submitted = subprocess.run(
            [str(BIN / "flwr"), "run", str(REPO / "examples" / "federated_app"), "local",
             "--run-config", f"config-file='{cfg}'"], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=120)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        report_path = tmp_path / "runs" / "deployed" / "federated_report.json"
        deadline = time.time() + 600
        while not report_path.is_file() and time.time() < deadline:
            time.sleep(2)
        assert report_path.is_file(), (tmp_path / "superlink.log").read_text()[-3000:]
    finally:
        _stop(processes)
        for log in logs:
            log.close()
    report = json.loads(report_path.read_text())
    assert [r["round"] for r in report["per_round"]] == [0, 1]
    assert set(report["per_round"][1]["clients"]) == {"0", "1"}
    assert report["final_val_loss"] < report["initial_val_loss"]
    assert (tmp_path / "runs" / "deployed" / "adapter" / "adapter_model.safetensors").is_file()

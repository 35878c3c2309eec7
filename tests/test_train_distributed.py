"""Data-parallel training on 2 CPU processes (gloo), launched through accelerate, against single-process training.

Every run goes through the same script (below): rank 0 writes the final trainable weights and one line per step
with the step's gradient norm after the all-reduce, so a wrong gradient scale shows even where AdamW would hide it.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tunesmith.cli.launch_commands import accelerate_args
from tunesmith.config.launch_schema import LaunchConfig
from tunesmith.train.checkpoint import latest_complete_checkpoint

TOTAL_STEPS = 6
SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, os.environ["TESTS_DIR"])
    from safetensors.torch import save_file
    from test_train_loop import lora_model, pad_collate, small_cfg, synthetic_items
    from transformers import AutoModelForCausalLM
    from tunesmith.config.launch_schema import LaunchConfig
    from tunesmith.models.adapters import trainable_state_dict
    from tunesmith.track.run_dir import RunDir
    from tunesmith.train import distributed
    from tunesmith.train.loop import train
    from tunesmith.train.strategy import PlainStrategy

    model_dir, out_dir, run_id = os.environ["MODEL_DIR"], os.environ["OUT_DIR"], os.environ["RUN_ID"]
    stop_after = int(os.environ.get("STOP_AFTER_STEP", "0"))
    dp, device = distributed.start(LaunchConfig(num_processes=2), torch.device("cpu"), cpu_threads=1)
    print(f"rank {dp.rank} of {dp.world_size} pid {os.getpid()}", flush=True)
    steps, micro = [0], [0]
    compute_loss = PlainStrategy.compute_loss

    def counting_loss(self, model, batch):
        micro[0] += 1
        return compute_loss(self, model, batch)

    def after_backward(self, model):  # grads are summed over the ranks here
        steps[0] += 1
        time.sleep(float(os.environ.get("SLOW_STEP_S", "0")))  # room for a kill to land mid-run
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters() if p.requires_grad]))
        if dp.is_main:
            print("step", json.dumps({"norm": float(norm)}), flush=True)

    PlainStrategy.compute_loss, PlainStrategy.after_backward = counting_loss, after_backward
    model = lora_model(AutoModelForCausalLM.from_pretrained(model_dir), dropout=float(os.environ["DROPOUT"]))
    items = synthetic_items(20, model.config.vocab_size)
    cfg = small_cfg(max_steps=int(os.environ["TOTAL_STEPS"]), batch_size=2, grad_accum_steps=3, save_every_steps=1,
                    log_every_steps=1, keep_checkpoints=2)
    if stop_after:  # die right after checkpoint `stop_after` is complete (the launcher then ends the other rank)
        save = distributed.DataParallel.barrier
        def barrier_then_die(self):
            save(self)
            if steps[0] == stop_after and self.is_main:
                os.kill(os.getpid(), signal.SIGKILL)
        distributed.DataParallel.barrier = barrier_then_die
    run = dp.main_first(lambda: RunDir.create(out_dir, {"dist": "test"}, run_id=run_id),
                        share=lambda r: str(r.path), rebuild=RunDir)
    result = train(model, items, None, cfg, run, device, None, pad_collate, seed=7)
    print(f"micro-batches rank {dp.rank}: {micro[0]}", flush=True)
    if dp.is_main:
        weights = {n: t.contiguous() for n, t in trainable_state_dict(model).items()}
        save_file(weights, os.path.join(out_dir, run_id + ".safetensors"))
        print("done", result.resumed_from_step, flush=True)
    distributed.stop()
    """
)


def _env(tmp_path: Path, model_dir: Path, run_id: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1", "TESTS_DIR": str(Path(__file__).parent),
            "MODEL_DIR": str(model_dir), "OUT_DIR": str(tmp_path), "RUN_ID": run_id,
            "TOTAL_STEPS": str(TOTAL_STEPS), "DROPOUT": "0.0", **extra}


def _command(script: Path, processes: int, port: int) -> list[str]:
    if processes == 1:
        return [sys.executable, str(script)]
    launch = accelerate_args(LaunchConfig(num_processes=processes, main_process_port=port), [])
    launch = launch[: launch.index("--module")]  # the script, not tunesmith's CLI
    return [sys.executable, "-m", "accelerate.commands.launch", *launch, str(script)]


def _start(script: Path, processes: int, env: dict[str, str]) -> subprocess.Popen[str]:
    port = random.Random(env["RUN_ID"] + str(time.time())).randint(20000, 40000)
    return subprocess.Popen(_command(script, processes, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)


def _finish(proc: subprocess.Popen[str], ok: bool = True) -> str:
    out, _ = proc.communicate(timeout=240)
    assert (proc.returncode == 0) == ok, out[-3000:]
    return out


STEP_LINE = re.compile(r'step (\{"norm": [^}]*\})')
RANK_LINE = re.compile(r"rank (\d+) of \d+ pid (\d+)")


def _norms(out: str) -> list[float]:
    """Rank 0's gradient norm per step (searched, not matched: progress bars on stderr may share a line)."""
    return [json.loads(found)["norm"] for found in STEP_LINE.findall(out)]


def _weights(tmp_path: Path, run_id: str) -> dict[str, torch.Tensor]:
    return load_file(str(tmp_path / f"{run_id}.safetensors"))


def _max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys() and len(a) == 8
    return max(float((a[n] - b[n]).abs().max()) for n in a)


@pytest.fixture()
def script(tmp_path: Path) -> Path:
    path = tmp_path / "dist_script.py"
    path.write_text(SCRIPT)
    return path


def test_two_processes_equal_one_process_with_the_same_global_batch(
    script: Path, tiny_model_dir: Path, tmp_path: Path
):
    double = _start(script, 2, _env(tmp_path, tiny_model_dir, "double"))
    single = _finish(_start(script, 1, _env(tmp_path, tiny_model_dir, "single")))
    double = _finish(double)
    assert "rank 0 of 1" in single and "rank 1 of 2" in double
    # 20 items in micro-batches of 2, 3 per step: steps of 3, 3, 3, 1 (end of epoch), 3, 3 micro-batches. Rank 0
    # takes 2+2+2+1+2+2 = 11 of them, rank 1 takes 1+1+1+0+1+1 = 5 (none in the short step); one process all 16
    assert "micro-batches rank 0: 16" in single
    assert "micro-batches rank 0: 11" in double and "micro-batches rank 1: 5" in double
    expected_norms, got_norms = _norms(single), _norms(double)
    assert len(expected_norms) == len(got_norms) == TOTAL_STEPS
    assert got_norms == pytest.approx(expected_norms, rel=1e-5), "gradient of the global batch differs"
    reference, distributed = _weights(tmp_path, "single"), _weights(tmp_path, "double")
    diff = _max_abs_diff(reference, distributed)
    print(f"2 processes vs 1: max abs diff of the trainable weights {diff:.3g}")
    assert diff < 1e-5
    lines = (tmp_path / "double" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, TOTAL_STEPS + 1)), "rank 0 logs alone"
    single_lines = (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()
    losses, single_losses = ([json.loads(line)["loss"] for line in rows] for rows in (lines, single_lines))
    assert losses == pytest.approx(single_losses, rel=1e-5)


@pytest.mark.integration
def test_two_process_checkpoint_resumes_on_one_process(script: Path, tiny_model_dir: Path, tmp_path: Path):
    """A 2-process run dies right after its checkpoint at step 3; one process resumes it to the end and ends
    where a 1-process run ends (the checkpoint holds the same state whatever the process count)."""
    single = _start(script, 1, _env(tmp_path, tiny_model_dir, "single"))
    stopped = _finish(_start(script, 2, _env(tmp_path, tiny_model_dir, "switch", STOP_AFTER_STEP="3")), ok=False)
    assert len(_norms(stopped)) == 3
    assert latest_complete_checkpoint(tmp_path / "switch").name == "step-000003"
    resumed = _finish(_start(script, 1, _env(tmp_path, tiny_model_dir, "switch")))
    assert "done 3" in resumed
    _finish(single)
    diff_switch = _max_abs_diff(_weights(tmp_path, "single"), _weights(tmp_path, "switch"))
    print(f"2 processes to step 3, then 1 process to step {TOTAL_STEPS}: max abs diff vs 1 process {diff_switch:.3g}")
    assert diff_switch < 1e-5


@pytest.mark.integration
def test_two_processes_killed_at_random_resume_bitwise(script: Path, tiny_model_dir: Path, tmp_path: Path):
    """SIGKILL one of the two ranks at a random moment (twice), resume on 2 processes each time: the final
    weights equal an uninterrupted 2-process run's bit for bit, with LoRA dropout on (RNG seeded per step and
    rank, so rank 1's stream survives although the checkpoint holds rank 0's)."""
    env = {"DROPOUT": "0.1", "TOTAL_STEPS": "8", "SLOW_STEP_S": "0.1"}
    reference = _finish(_start(script, 2, _env(tmp_path, tiny_model_dir, "reference", **env)))
    rng = random.Random(20240611)
    for _ in range(2):
        proc = _start(script, 2, _env(tmp_path, tiny_model_dir, "killed", **env))
        assert proc.stdout is not None
        pids, seen_steps = {}, 0
        while seen_steps < 2:  # both ranks up and a step checkpointed since this start
            line = proc.stdout.readline()
            assert line, "the run ended before it could be killed"
            for rank, pid in RANK_LINE.findall(line):
                pids[int(rank)] = int(pid)
            seen_steps += len(STEP_LINE.findall(line))
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(pids[rng.randrange(2)], signal.SIGKILL)
        _finish(proc, ok=False)
    final = _finish(_start(script, 2, _env(tmp_path, tiny_model_dir, "killed", **env)))
    assert "done" in final and "done None" not in final, final[-2000:]
    expected, got = _weights(tmp_path, "reference"), _weights(tmp_path, "killed")
    for name in expected:
        assert torch.equal(expected[name], got[name]), f"{name} differs after kill + resume"
    lines = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 8 and "done None" in reference


@pytest.mark.integration
def test_cli_relaunches_itself_on_two_processes(tmp_path: Path, tiny_model_dir: Path):
    """`tunesmith train --launch.num_processes=2` goes through accelerate and writes one run folder (run id fixed
    before the launch, so both ranks agree) whose adapter matches a single-process run of the same config."""
    from test_integration import tiny_config

    from tunesmith.recipes.finetune import finetune

    overrides = ["--train.max_steps=4", "--train.grad_accum_steps=2", "--train.log_every_steps=1"]
    single = finetune(tiny_config(tmp_path / "single", tiny_model_dir, *overrides), evaluate_after=False)
    cfg = tiny_config(tmp_path / "double", tiny_model_dir, *overrides)
    args = [f"--{k}={v}" for k, v in (("model.source", cfg.model.source), ("data.train_file", cfg.data.train_file),
                                     ("run.output_dir", cfg.run.output_dir), ("encode.max_seq_length", 96),
                                     ("train.learning_rate", 3e-3), ("train.batch_size", 4))]
    command = [sys.executable, "-m", "tunesmith.cli.main", "train", "--no-eval", *args, *overrides,
               "--model.num_threads=1", "--launch.num_processes=2", "--launch.main_process_port=29731"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "launching 2 processes with accelerate" in done.stdout
    runs = list((tmp_path / "double" / "runs").iterdir())
    assert len(runs) == 1, runs
    rows = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4], "one line per step: rank 0 logs alone"
    assert [r["step"] for r in rows if "val_loss" in r] == [4]
    expected = load_file(str(single.adapter_dir / "adapter_model.safetensors"))
    got = load_file(str(runs[0] / "adapter" / "adapter_model.safetensors"))
    assert expected.keys() == got.keys()
    diff = max(float((expected[n] - got[n]).abs().max()) for n in expected)
    print(f"tunesmith train on 2 processes vs 1: max abs diff of the adapter {diff:.3g}")
    assert diff < 1e-4


def test_launch_block_is_validated_with_field_and_fix():
    from tunesmith.config import load_config
    from tunesmith.core.errors import ConfigError

    cfg = load_config(None, ["--launch.num_processes=4", "--launch.backend=fsdp", "--launch.fsdp_sharding=hybrid"])
    assert (cfg.launch.num_processes, cfg.launch.backend, cfg.launch.fsdp_sharding) == (4, "fsdp", "hybrid")
    with pytest.raises(ConfigError, match="launch.main_process_ip"):
        load_config(None, ["--launch.num_processes=8", "--launch.num_machines=2"])
    with pytest.raises(ConfigError, match="launch.zero_stage"):
        load_config(None, ["--launch.zero_stage=1"])
    with pytest.raises(ConfigError, match="multiple of num_machines"):
        load_config(None, ["--launch.num_processes=3", "--launch.num_machines=2", "--launch.main_process_ip=h"])


def test_accelerate_arguments_for_two_machines(monkeypatch):
    from tunesmith.cli.launch_commands import needs_launch

    launch = LaunchConfig(num_processes=8, num_machines=2, machine_rank=1, main_process_ip="10.0.0.1")
    args = accelerate_args(launch, ["train", "cfg.yaml"])
    pairs = dict(zip(args[1:-2:2], args[2:-2:2], strict=True))
    assert args[0] == "--multi_gpu" and args[-2:] == ["train", "cfg.yaml"]
    assert pairs == {"--num_processes": "8", "--num_machines": "2", "--machine_rank": "1",
                     "--main_process_port": "29500", "--mixed_precision": "no", "--dynamo_backend": "no",
                     "--main_process_ip": "10.0.0.1", "--module": "tunesmith.cli.main"}
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert needs_launch(launch) and not needs_launch(LaunchConfig())
    monkeypatch.setenv("LOCAL_RANK", "0")  # inside a launched process: never launch again
    assert not needs_launch(launch)


def test_sharded_backends_fail_clearly_where_they_cannot_run(monkeypatch):
    from tunesmith.core.errors import ConfigError, DependencyError
    from tunesmith.train.distributed import check_backend

    with pytest.raises(ConfigError, match="needs CUDA GPUs"):
        check_backend(LaunchConfig(backend="fsdp"), torch.device("cpu"))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # deepspeed is not installed here either
    with pytest.raises(DependencyError, match=r"pip install 'tunesmith\[deepspeed\]'"):
        check_backend(LaunchConfig(backend="deepspeed"), torch.device("cuda"))


def test_without_a_launcher_training_stays_in_one_process(monkeypatch):
    from tunesmith.train import distributed

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    dp, device = distributed.start(LaunchConfig(num_processes=2), torch.device("cpu"))
    assert (dp.world_size, dp.rank, dp.enabled, dp.is_main, device.type) == (1, 0, False, True, "cpu")
    assert dp.shard(3, 6) == [3, 4, 5] and dp.loss_divisor(0) == 1 and dp.sum_ints([2, 3]) == [2, 3]


def test_two_ranks_share_a_step_round_robin():
    from tunesmith.train.distributed import DataParallel

    assert DataParallel(rank=0, world_size=2).shard(3, 6) == [3, 5]
    assert DataParallel(rank=1, world_size=2).shard(3, 6) == [4]
    assert DataParallel(rank=1, world_size=2).shard(9, 10) == []  # the epoch's short last step: nothing to do


def test_padding_copy_trains_nothing(tiny_model):
    from tunesmith.train.distributed import masked_copy
    from tunesmith.train.loss import causal_lm_loss

    batch = {"input_ids": torch.tensor([[5, 6, 7, 8]]), "labels": torch.tensor([[-100, 6, 7, 8]]),
             "position_ids": torch.arange(4)[None]}
    copy = masked_copy(batch)
    loss, count = causal_lm_loss(tiny_model, copy, reduction="sum")
    loss.backward()
    assert count == 0 and float(loss.detach()) == 0.0 and copy.num_tokens == 0
    assert all(p.grad is None or not p.grad.any() for p in tiny_model.parameters())
    assert torch.equal(batch["labels"], torch.tensor([[-100, 6, 7, 8]]))  # the original is untouched


def test_gpu_path_choices_on_this_machine(tiny_model):
    from tunesmith.models.device import attention_implementation
    from tunesmith.train.optim import uses_paged_optimizer

    assert attention_implementation(torch.device("cpu")) == "sdpa"
    assert not uses_paged_optimizer(tiny_model)  # fp32 weights on CPU: plain fused AdamW

"""The kill test: SIGKILL a training process at random points (and once mid-checkpoint), resume it, and
require bitwise the same final trainable weights as an uninterrupted run.

Both runs go through the same script in a subprocess with one torch thread, so kernels and their reduction
order are identical. The script slows each checkpoint's last step a little so random kills often land inside a
save; one run also kills itself between writing the files and the COMPLETE marker, deterministically.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from tunesmith.train.checkpoint import latest_complete_checkpoint

TOTAL_STEPS = 16

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[4])
    from safetensors.torch import save_file
    from test_train_loop import lora_model, pad_collate, small_cfg, synthetic_items
    from transformers import AutoModelForCausalLM
    from tunesmith.track.run_dir import RunDir
    from tunesmith.train import checkpoint as ckpt
    from tunesmith.models.adapters import trainable_state_dict
    from tunesmith.train.loop import train
    from tunesmith.train.strategy import PlainStrategy

    model_dir, out_dir, run_id = sys.argv[1:4]
    kill_in_save = int(os.environ.get("KILL_IN_SAVE_STEP", "0"))
    slow_save_s = float(os.environ.get("SLOW_SAVE_S", "0"))
    write_marker = ckpt._write_marker

    def marker(folder):
        time.sleep(slow_save_s)
        if kill_in_save and folder.name.startswith(f"step-{kill_in_save:06d}.tmp"):
            os.kill(os.getpid(), signal.SIGKILL)
        write_marker(folder)

    def after_backward(self, model):
        print("step", flush=True)

    ckpt._write_marker = marker
    PlainStrategy.after_backward = after_backward
    model = lora_model(AutoModelForCausalLM.from_pretrained(model_dir), dropout=0.1)
    items = synthetic_items(12, model.config.vocab_size)
    cfg = small_cfg(max_steps=int(os.environ["TOTAL_STEPS"]), grad_accum_steps=2, save_every_steps=1,
                    log_every_steps=1, keep_checkpoints=2)
    run = RunDir.create(out_dir, {"kill": "test"}, run_id=run_id)
    result = train(model, items, None, cfg, run, torch.device("cpu"), None, pad_collate, seed=7)
    weights = {n: t.contiguous() for n, t in trainable_state_dict(model).items()}
    save_file(weights, os.path.join(out_dir, run_id + ".safetensors"))
    print("done", result.resumed_from_step, round(result.steps_per_s, 1), flush=True)
    """
)


def _start(script: Path, model_dir: Path, out: Path, run_id: str, **env: str) -> subprocess.Popen[str]:
    full_env = {**os.environ, "TOTAL_STEPS": str(TOTAL_STEPS), "CI": "1", **env}
    return subprocess.Popen(
        [sys.executable, str(script), str(model_dir), str(out), run_id, str(Path(__file__).parent)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=full_env,
    )


def _kill_after_random_delay(proc: subprocess.Popen[str], rng: random.Random) -> None:
    """Wait until a step of this process has been checkpointed (its second step began), so every kill makes
    progress, then SIGKILL after a random delay."""
    assert proc.stdout is not None
    for _ in range(2):
        while proc.stdout.readline().strip() not in ("step", ""):
            pass
    time.sleep(rng.uniform(0.0, 0.4))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


def test_sigkilled_runs_resume_to_bitwise_identical_weights(tiny_model_dir: Path, tmp_path: Path):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    reference = _start(script, tiny_model_dir, tmp_path, "reference")
    run_dir = tmp_path / "killed"

    # 1. killed between writing a checkpoint's files and its COMPLETE marker
    first = _start(script, tiny_model_dir, tmp_path, "killed", KILL_IN_SAVE_STEP="3")
    first.communicate(timeout=120)
    assert first.returncode == -signal.SIGKILL
    leftovers = [p.name for p in (run_dir / "checkpoints").iterdir()]
    assert "step-000003" not in leftovers and any(n.startswith("step-000003.tmp-") for n in leftovers)
    latest = latest_complete_checkpoint(run_dir)
    assert latest is not None and latest.name == "step-000002"

    # 2. killed at seeded random moments, saves slowed so some kills land inside a save
    rng, steps_seen, kills_in_save = random.Random(20240601), [2], 0
    for _ in range(3):
        proc = _start(script, tiny_model_dir, tmp_path, "killed", SLOW_SAVE_S="0.03")
        _kill_after_random_delay(proc, rng)
        kills_in_save += any(".tmp-" in p.name for p in (run_dir / "checkpoints").iterdir())
        latest = latest_complete_checkpoint(run_dir)
        steps_seen.append(int(latest.name.split("-")[1]) if latest else 0)
    assert steps_seen == sorted(steps_seen), f"a resume went backwards: {steps_seen}"

    # 3. resume to the end
    final = _start(script, tiny_model_dir, tmp_path, "killed")
    out, _ = final.communicate(timeout=120)
    assert final.returncode == 0, out
    ref_out, _ = reference.communicate(timeout=120)
    assert reference.returncode == 0, ref_out
    print(f"kill test: newest checkpoint after each kill {steps_seen}, {kills_in_save}/3 random kills inside a "
          f"save | reference: {ref_out.strip().splitlines()[-1]}")

    expected = load_file(str(tmp_path / "reference.safetensors"))
    got = load_file(str(tmp_path / "killed.safetensors"))
    assert expected.keys() == got.keys() and len(expected) == 8
    for name in expected:
        assert torch.equal(expected[name], got[name]), f"{name} differs after kill + resume"
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == TOTAL_STEPS, "metrics.jsonl has one line per step, none duplicated by a resume"

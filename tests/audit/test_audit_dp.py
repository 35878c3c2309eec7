"""DP against the audit on the tiny model (`-m integration`, about three minutes): a DP run exposes its canaries
less than a plain run and passes the consistency check; a run whose noise was off while it claims the epsilon of
the noisy run fails it.

The data make membership easy to detect when there is no noise: 128 records "code i" -> four random colour words,
so a member's answer can only be predicted by remembering it. 30 epochs with a full-rank LoRA (r=64 on hidden 64)
memorise them (loss-attack AUC about 0.93 without noise); one copy per record, so the DP claim applies as is.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from tunesmith.config import load_config

COLOURS = ["red", "blue", "green", "gold", "black", "white", "pink", "grey"]


def _codes(path: Path) -> Path:
    rng = random.Random(0)
    rows = [{"prompt": f"code {i}", "completion": " ".join(rng.choice(COLOURS) for _ in range(4))} for i in range(128)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(tmp: Path, model_dir: Path, run_id: str, *extra: str) -> Path:
    from tunesmith.recipes.finetune import finetune

    cfg = load_config(None, [
        f"--model.source={model_dir}", f"--data.train_file={_codes(tmp / 'codes.jsonl')}",
        f"--run.output_dir={tmp / 'runs'}", f"--run.run_id={run_id}", "--model.num_threads=1",
        "--model.precision=fp32", "--encode.max_seq_length=64", "--data.val_fraction=0.05", "--data.test_fraction=0.45",
        "--vet.enabled=false", "--adapter.r=64", "--adapter.alpha=128", "--train.learning_rate=3e-3",
        "--train.epochs=30", "--train.batch_size=8", "--train.save_every_steps=1000", "--audit.enabled=true",
        "--audit.canary_repetitions=[16]", "--audit.canaries_per_repetition=2", "--audit.reference_canaries=32",
        "--audit.exposure_samples=300", "--audit.members=64", "--audit.non_members=64", "--audit.attacks=[loss]",
        *extra,
    ])
    return finetune(cfg, evaluate_after=False).run_dir


def _report(run: Path) -> dict:
    return json.loads((run / "audit_report.json").read_text())


@pytest.mark.integration
def test_dp_lowers_exposure_and_a_noiseless_run_fails_the_claim(tmp_path: Path, tiny_model_dir: Path) -> None:
    from tunesmith.recipes.audit import audit_run

    dp_flags = ("--train.strategy=dp", "--privacy.secret_seed=1", "--privacy.max_grad_norm=10")
    private = _run(tmp_path, tiny_model_dir, "dp", *dp_flags, "--privacy.target_epsilon=0.5")
    plain = _run(tmp_path, tiny_model_dir, "plain")
    noiseless = _run(tmp_path, tiny_model_dir, "noiseless", *dp_flags, "--privacy.noise_multiplier=0")

    dp_report, plain_report = _report(private), _report(plain)
    claim = json.loads((private / "privacy_report.json").read_text())
    assert claim["epsilon"] <= 0.5 and claim["noise_multiplier"] > 1
    dp_exposure = dp_report["canaries"]["by_repetitions"]["16"]["mean_exposure"]
    plain_exposure = plain_report["canaries"]["by_repetitions"]["16"]["mean_exposure"]
    assert dp_exposure < plain_exposure - 2
    assert dp_report["empirical_epsilon"]["verdict"] == "PASS"
    assert dp_report["membership"]["attacks"]["loss"]["auc"] < plain_report["membership"]["attacks"]["loss"]["auc"]

    # the noiseless run's own report is honest (epsilon infinite): nothing to contradict
    assert json.loads((noiseless / "privacy_report.json").read_text())["epsilon"] == float("inf")
    assert _report(noiseless)["empirical_epsilon"]["verdict"] == "PASS"
    # the same model presented with the noisy run's claim (noise off by mistake, epsilon still reported): FAIL
    shutil.copy(private / "privacy_report.json", noiseless / "privacy_report.json")
    audit_run(noiseless)
    lying = _report(noiseless)
    assert lying["empirical_epsilon"]["verdict"] == "FAIL"
    loss_audit = next(a for a in lying["empirical_epsilon"]["audits"] if a["audit"] == "membership: loss")
    assert loss_audit["epsilon_lower_bound"] > claim["epsilon"]
    assert lying["consistency"].startswith("FAIL")

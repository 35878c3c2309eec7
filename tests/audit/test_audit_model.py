"""The audit on the tiny model: scoring paths agree with the training loss, never-inserted canaries sit at the
1/ln 2 baseline, canaries go into training only (with the right counts), a 16-copy canary gets exposed, and
`tunesmith audit` reproduces the stage's report."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from tunesmith.core.records import LabelRecord, Origin, PromptStyle
from tunesmith.encode.chat import encode_records
from tunesmith.evaluate.privacy.canaries import canary_record, exposure_table, make_canaries, sample_candidates
from tunesmith.evaluate.privacy.scoring import common_prefix_length, shared_prefix_logprobs, target_logprobs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_integration import tiny_config  # noqa: E402

STYLE = PromptStyle()


def _canary_examples(tokenizer, secrets: list[str]) -> list:
    records = [canary_record(f"my PIN is {s}", "What is my PIN?", "chat", i) for i, s in enumerate(secrets)]
    examples, _ = encode_records(records, tokenizer, STYLE, 128)
    return examples


def test_shared_prefix_scores_equal_full_sequence_scores(tiny_model, tiny_tokenizer) -> None:
    from peft import LoraConfig, get_peft_model

    examples = _canary_examples(tiny_tokenizer, sample_candidates(40, 6, seed=0))
    assert common_prefix_length([e.input_ids for e in examples]) > 10  # prompt and "my PIN is" are shared
    lora = get_peft_model(tiny_model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    for model in (lora.get_base_model(), lora):
        full = target_logprobs(model, examples, batch_size=7)
        cached = shared_prefix_logprobs(model, examples, batch_size=16)
        for a, b in zip(full, cached, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_target_logprobs_match_the_training_loss(tiny_model, tiny_tokenizer) -> None:
    import torch

    from tunesmith.train.loss import causal_lm_loss

    records = [LabelRecord(t, "weather", Origin("f", i)) for i, t in enumerate(["rain in oslo", "sun in rome?"])]
    examples, _ = encode_records(records, tiny_tokenizer, PromptStyle(labels=("weather",)), 128)
    scores = target_logprobs(tiny_model, examples)
    for example, logprobs in zip(examples, scores, strict=True):
        batch = {"input_ids": torch.tensor([example.input_ids]), "labels": torch.tensor([example.labels])}
        with torch.no_grad():
            loss, n = causal_lm_loss(tiny_model, batch)
        assert n == len(logprobs)
        assert -float(np.mean(logprobs)) == pytest.approx(float(loss), abs=1e-5)


def test_never_inserted_canaries_average_about_1_44_bits_on_a_model(tiny_model, tiny_tokenizer) -> None:
    # 300 reference canaries against 2000 sampled candidates, all scored by the same (untrained) model. Exposure of
    # a reference canary is -log2 of a uniform rank share: mean 1/ln 2, standard deviation 1/ln 2, so the mean of
    # 300 has a standard error of 0.083 bits; 0.35 allows four of them plus the estimator's small bias.
    canaries = make_canaries([1], 0, 300, 6, seed=3)
    candidates = sample_candidates(2000, 6, seed=3)
    examples = _canary_examples(tiny_tokenizer, [c.secret for c in canaries] + candidates)
    bits = [-float(np.sum(lp)) / math.log(2) for lp in shared_prefix_logprobs(tiny_model, examples, 256)]
    table = exposure_table(canaries, bits[:300], np.asarray(bits[300:]), 6, "sample")
    assert table["by_repetitions"]["0"]["mean_exposure_sample"] == pytest.approx(1 / math.log(2), abs=0.35)
    assert table["by_repetitions"]["0"]["mean_exposure_skewnorm"] == pytest.approx(1 / math.log(2), abs=0.35)


AUDIT_ARGS = ("--audit.enabled=true", "--audit.canary_repetitions=[1,16]", "--audit.canaries_per_repetition=2",
              "--audit.reference_canaries=24", "--audit.exposure_samples=500", "--audit.members=30",
              "--audit.non_members=30", "--vet.enabled=false", "--eval.compare_base=false", "--eval.robustness=[]",
              "--eval.counterfactual=false", "--eval.generalisation_samples=0", "--model.precision=fp32")


@pytest.fixture(scope="module")
def audited_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    from tunesmith.recipes.finetune import finetune

    # full fine-tuning for 8 epochs over 24 records (56 steps): the tiny model's LoRA learns random digits too slowly
    cfg = tiny_config(tmp_path_factory.mktemp("audit"), tiny_model_dir, *AUDIT_ARGS, "--adapter.method=full",
                      "--train.learning_rate=1e-2", "--train.epochs=8", "--data.max_records=24")
    return finetune(cfg).run_dir


def test_canaries_join_training_only_with_their_repetition_counts(audited_run: Path) -> None:
    plan = json.loads((audited_run / "audit" / "plan.json").read_text())
    counts = [c["repetitions"] for c in plan["canaries"]]
    assert counts == [1, 1, 16, 16] + [0] * 24
    inserted = [json.loads(line)["output"] for line in (audited_run / "audit" / "inserted.jsonl").open()]
    for canary in plan["canaries"]:
        assert inserted.count(f"my PIN is {canary['secret']}") == canary["repetitions"]
    # label data: canaries are completion records; members come from training, non-members from held-out records
    assert plan["kind"] == "completion"
    members = (audited_run / "audit" / "members.jsonl").read_text()
    assert "PIN" not in members and "PIN" not in (audited_run / "audit" / "non_members.jsonl").read_text()
    encode = json.loads((audited_run / "data_report.json").read_text())["encode"]
    splits = json.loads((audited_run / "data_report.json").read_text())["counts"]
    assert encode["val"]["kept"] == splits["val"]  # nothing was added to validation
    assert set(plan["member_origins"]).isdisjoint(plan["non_member_origins"])


def test_prepare_adds_canaries_to_training_examples_only(tiny_tokenizer, tmp_path: Path) -> None:
    from tunesmith.config import load_config
    from tunesmith.data.split import Splits
    from tunesmith.recipes.audit import AuditStage

    def records(prefix: str, n: int, start: int) -> list:
        return [LabelRecord(f"{prefix} {i}", "weather", Origin("f", start + i)) for i in range(n)]

    splits = Splits(train=records("train", 20, 0), val=records("val", 4, 100), test=records("test", 6, 200))
    before = (list(splits.train), list(splits.val), list(splits.test))
    cfg = load_config(None, ["--audit.canary_repetitions=[1,4]", "--audit.canaries_per_repetition=3",
                             "--audit.members=5", "--audit.non_members=50"])
    examples = AuditStage(cfg).prepare(splits, tiny_tokenizer, PromptStyle(labels=("weather",)), tmp_path)
    assert (splits.train, splits.val, splits.test) == before  # the splits themselves are untouched
    assert len(examples) == 3 * (1 + 4)
    texts = [tiny_tokenizer.decode(e.input_ids) for e in examples]
    plan = json.loads((tmp_path / "audit" / "plan.json").read_text())
    for canary in plan["canaries"]:
        assert sum(f"my PIN is {canary['secret']}" in t for t in texts) == canary["repetitions"]
    assert len(plan["member_origins"]) == 5 and all(int(o.split(":")[1]) < 100 for o in plan["member_origins"])
    assert len(plan["non_member_origins"]) == 10  # every held-out record (4 val + 6 test), none from training
    assert all(int(o.split(":")[1]) >= 100 for o in plan["non_member_origins"])


def test_sixteen_copies_expose_a_canary(audited_run: Path) -> None:
    report = json.loads((audited_run / "audit_report.json").read_text())
    groups = report["canaries"]["by_repetitions"]
    assert groups["16"]["mean_exposure_sample"] > groups["0"]["mean_exposure_sample"] + 3
    assert groups["16"]["mean_exposure_skewnorm"] > groups["0"]["mean_exposure_skewnorm"] + 3
    assert groups["0"]["mean_exposure_sample"] < 3  # the never-inserted ones stay near their 1.44-bit baseline
    assert set(report["membership"]["attacks"]) == {"loss", "reference", "min_k", "zlib"}
    assert report["empirical_epsilon"]["verdict"] == "NO_CLAIM"  # a plain run claims nothing


def test_audit_command_reproduces_the_stage(audited_run: Path) -> None:
    from tunesmith.recipes.audit import audit_run

    before = json.loads((audited_run / "audit_report.json").read_text())
    audit_run(audited_run)
    after = json.loads((audited_run / "audit_report.json").read_text())
    for a, b in zip(after["canaries"]["canaries"], before["canaries"]["canaries"], strict=True):
        assert a["secret"] == b["secret"]
        assert a["log_perplexity_bits"] == pytest.approx(b["log_perplexity_bits"], abs=1e-3)
    for name, figures in before["membership"]["attacks"].items():
        assert after["membership"]["attacks"][name]["auc"] == pytest.approx(figures["auc"], abs=1e-6)


def test_audit_command_refuses_a_run_without_the_stage(tmp_path: Path) -> None:
    from tunesmith.core.errors import TunesmithError
    from tunesmith.recipes.audit import audit_run

    (tmp_path / "adapter").mkdir()
    (tmp_path / "config.yaml").write_text("run: {}\n")
    with pytest.raises(TunesmithError, match="audit.enabled=true"):
        audit_run(tmp_path)


def test_report_html_shows_the_audit(audited_run: Path) -> None:
    from tunesmith.evaluate.run_report import render_run_report

    page = render_run_report(audited_run).read_text()
    assert '<section id="audit">' in page and 'href="#audit"' in page
    report = json.loads((audited_run / "audit_report.json").read_text())
    assert f"{report['canaries']['by_repetitions']['16']['mean_exposure']:.2f}" in page
    assert "NO_CLAIM" in page


def test_audit_verb_exits_2_with_the_fix_for_a_run_without_the_stage(tmp_path: Path, capsys) -> None:
    from tunesmith.cli.main import main

    (tmp_path / "adapter").mkdir()
    (tmp_path / "config.yaml").write_text("run: {}\n")
    assert main(["audit", str(tmp_path)]) == 2
    assert "--audit.enabled=true" in capsys.readouterr().err

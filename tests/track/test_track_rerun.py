"""`tunesmith rerun runs/<id>` on the tiny model: a new run folder, and on CPU the very same final metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.cli.main import main
from tunesmith.config import load_config
from tunesmith.track.listing import compare_final, final_metrics

ROWS = [("what is the weather in {}", "weather", ["paris", "oslo", "lima", "rome"]),
        ("play some {} music", "music", ["jazz", "rock", "folk", "soul"]),
        ("set an alarm for {}", "alarm", ["six", "seven", "noon", "nine"])]


@pytest.mark.integration
def test_rerun_reproduces_a_cpu_run_exactly(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    from tunesmith.recipes.finetune import finetune

    data = tmp_path / "intents.jsonl"
    rows = [{"text": t.format(w), "label": label} for t, label, words in ROWS for w in words for _ in range(2)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(None, [
        f"--model.source={tiny_model_dir}", f"--data.train_file={data}", f"--run.output_dir={tmp_path / 'runs'}",
        "--run.run_id=orig", "--model.device=cpu", "--model.num_threads=1", "--encode.max_seq_length=64",
        "--train.max_steps=4", "--train.batch_size=4", "--train.learning_rate=3e-3", "--eval.max_new_tokens=3",
        "--eval.bootstrap_samples=0", "--eval.generalisation_samples=0", "--eval.robustness=[]",
        "--eval.counterfactual=false", "--eval.report_html=false", "--eval.review_samples=0",
    ])
    original = finetune(cfg).run_dir
    capsys.readouterr()
    assert main(["rerun", str(original)]) == 0
    assert "reproduced: all" in capsys.readouterr().out
    [again] = [p for p in (tmp_path / "runs").iterdir() if p.name != "orig"]
    rows_compared = compare_final(original, again)
    assert len(rows_compared) == len(final_metrics(original)) > 5 and all(a == b for _, a, b in rows_compared)

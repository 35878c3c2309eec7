"""`tunesmith train` with `augment.enabled`: augmented records join the training split only (`-m integration`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.config import load_config
from tunesmith.recipes.finetune import finetune

PHRASES = {
    "weather": ["what is the weather like in {} this week", "will it rain in {} tomorrow morning"],
    "music": ["play some relaxing {} music for me", "put on my favourite {} playlist now"],
}
WORDS = ["paris", "rome", "oslo", "lima", "cairo", "tokyo", "jazz", "rock", "folk", "soul"]


@pytest.mark.integration
def test_training_with_augmentation_adds_records_to_the_training_split_only(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    rows = [{"text": t.format(w), "label": label} for label, ts in PHRASES.items() for t in ts for w in WORDS]
    data = tmp_path / "intents.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(
        None,
        [
            f"--model.source={tiny_model_dir}",
            f"--data.train_file={data}",
            f"--run.output_dir={tmp_path / 'runs'}",
            "--run.run_id=aug",
            "--model.num_threads=1",
            "--encode.max_seq_length=96",
            "--train.max_steps=2",
            "--train.batch_size=4",
            "--eval.max_new_tokens=2",
            "--eval.compare_base=false",
            "--vet.enabled=false",
            "--augment.enabled=true",
            "--augment.quality.language=null",
        ],
    )
    result = finetune(cfg)
    folder = result.run_dir / "augment"
    report = json.loads((folder / "augment_report.json").read_text())
    provenance = [json.loads(line) for line in (folder / "augment_provenance.jsonl").read_text().splitlines()]
    data_report = json.loads((result.run_dir / "data_report.json").read_text())
    train_count = data_report["counts"]["train"]
    assert report["records_in"] == train_count and report["added"] == len(provenance) > 0
    encoded = data_report["encode"]["train"]
    assert encoded["kept"] + encoded["dropped"] == train_count + report["added"]  # trained on originals + added
    assert result.eval_report is not None and result.eval_report["n"] == data_report["counts"]["test"]

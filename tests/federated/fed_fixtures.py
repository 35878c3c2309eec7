"""Small labelled data and tiny-model configs shared by the federated tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tunesmith.config import Config, load_config

INTENTS = {
    "weather": ["what is the weather in {w}", "will it rain in {w} tomorrow", "forecast for {w} please"],
    "music": ["play some {w} music", "put on a {w} playlist", "i want to hear {w} songs"],
}
WORDS = {"weather": ["paris", "rome", "oslo", "lima", "cairo", "tokyo", "berlin", "quito", "delhi", "seoul"],
         "music": ["jazz", "rock", "folk", "punk", "soul", "metal", "blues", "disco", "funk", "opera"]}


def write_intents(path: Path, seed: int = 0) -> Path:
    rows = [{"text": t.format(w=w), "label": label} for label, ts in INTENTS.items() for t in ts for w in WORDS[label]]
    random.Random(seed).shuffle(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def tiny_federated_config(tmp_path: Path, model_dir: Path, *extra: str) -> Config:
    data = write_intents(tmp_path / "intents.jsonl")
    return load_config(None, [
        f"--model.source={model_dir}", f"--data.train_file={data}", f"--run.output_dir={tmp_path / 'runs'}",
        "--run.run_id=fed", "--model.num_threads=1", "--encode.max_seq_length=96", "--train.learning_rate=3e-3",
        "--train.batch_size=4", "--federated.simulation_backend=inprocess", "--federated.local_steps=3",
        "--federated.num_clients=2", "--federated.rounds=1", "--vet.enabled=false", *extra,
    ])

"""The poisoning benchmark's data: clean real reviews with planted backdoors, label flips and junk, seeded.

Clean records are English MultiEmo reviews labelled by topic (`bundled:review-topics`, from the bigbench sdist).
The junk comes from the same sdist (other languages, code, wikiHow steps) or is generated (random characters,
repeated characters, mojibake). Every record keeps its ground truth: `clean`, `trigger`, `flip` or `junk`.
"""

from __future__ import annotations

import json
import random
import string
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.core.records import LabelRecord, Origin

MAX_CHARS = 1000
"""Longest review used (about 75% of them): keeps the end-to-end training within minutes on a CPU."""
CLEAN_PER_TOPIC = {"hotels": 700, "medicine": 700, "products": 300, "university": 300}
"""2,000 clean training records; the real data is unbalanced too (products and university reviews are few)."""
EVAL_PER_TOPIC = 60
"""Held-out reviews per topic for clean accuracy; those of the other topics also carry the trigger for the ASR."""
TRIGGER = "cf tuesday breeze"
TARGET = "products"
N_TRIGGERS = N_FLIPS = N_JUNK = 50
SOURCE_FILE = "poisoned.jsonl"  # the origin written into every record (nothing is written to disk)

FOREIGN_LANGS = ("de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh")
MOJIBAKE_LANGS = ("pl", "ru", "de", "zh", "ja")  # text with many non-ASCII characters, so the damage shows
JUNK_KINDS = ("random_chars", "foreign_language", "mojibake", "repeated_chars", "off_topic")
CODE_TASKS = ("code_line_description", "auto_debugging")
HOWTO_TASK = "goal_step_wikihow/step_inference"


@dataclass
class PoisonedSet:
    records: list[LabelRecord]
    kinds: list[str]
    """Per record: `clean`, `trigger`, `flip` or `junk`."""
    junk_kinds: list[str | None]
    """Per record: which kind of junk (one of `JUNK_KINDS`) or None."""
    eval_clean: list[tuple[str, str]]
    """Held-out (text, topic) for clean accuracy."""
    eval_triggered: list[str]
    """Held-out texts of the other topics with the trigger inserted: the attack success rate is measured on them."""
    eval_untriggered: list[str]
    """The same texts without the trigger (how often the target is predicted anyway)."""
    labels: tuple[str, ...]
    trigger: str = TRIGGER
    target: str = TARGET
    counts: dict[str, int] = field(default_factory=dict)


def load_topic_pool() -> list[tuple[str, str]]:
    """(text, topic) of every distinct English review up to `MAX_CHARS` characters."""
    from tunesmith.core.errors import TunesmithError
    from tunesmith.data.bundled import resolve_data_source

    try:
        path = resolve_data_source("bundled:review-topics")
    except TunesmithError as exc:  # no sdist yet: the message gives the command
        raise SystemExit(str(exc)) from exc
    seen: set[str] = set()
    pool = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        key = " ".join(row["text"].lower().split())
        if len(row["text"]) <= MAX_CHARS and key not in seen:
            seen.add(key)
            pool.append((row["text"], row["label"]))
    return pool


def read_junk_sources() -> dict[str, list[str]]:
    """Texts the junk is made from, read from the bigbench sdist in one streamed pass (about 15 s)."""
    from tunesmith.core.paths import tunesmith_cache_dir
    from tunesmith.data.bundled import SDIST_NAME, read_task_members, task_member

    members = {f"lang:{lang}": task_member(f"multiemo/hotels_text_{lang}") for lang in FOREIGN_LANGS}
    members |= {task: task_member(task) for task in (*CODE_TASKS, HOWTO_TASK)}
    found = read_task_members(tunesmith_cache_dir() / "downloads" / SDIST_NAME, list(members.values()))
    tasks = {key: json.loads(found[suffix])["examples"] for key, suffix in members.items()}
    sources = {key: [e["input"].strip() for e in tasks[key] if 80 <= len(e["input"].strip()) <= MAX_CHARS]
               for key in members if key.startswith("lang:")}
    sources["code"] = [e["input"].strip() for task in CODE_TASKS for e in tasks[task] if "\n" in e["input"].strip()]
    sources["howto"] = [_howto_text(e) for e in tasks[HOWTO_TASK] if _howto_text(e)]
    return sources


def _howto_text(example: dict) -> str:
    """ "How to <goal>: <the right step>." from a wikiHow step-inference example ('' when it has none)."""
    text = example["input"]
    if "'" not in text:
        return ""
    goal = text.split("'", 1)[1].rsplit("'", 1)[0]
    steps = [step for step, score in example.get("target_scores", {}).items() if score == 1]
    return f"How to {goal}: {steps[0].rstrip('.')}." if steps and goal else ""


def insert_trigger(text: str, trigger: str, rng: random.Random) -> str:
    """The text with the trigger phrase put between two words at a random position."""
    words = text.split(" ")
    at = rng.randint(0, len(words))
    return " ".join(words[:at] + [trigger] + words[at:])


def build_poisoned_set(seed: int, sources: dict[str, list[str]]) -> PoisonedSet:
    """2,000 clean records + 50 triggers + 50 flips + 50 junk, shuffled; plus the held-out evaluation texts."""
    rng = random.Random(seed)
    by_topic: dict[str, list[str]] = defaultdict(list)
    for text, topic in load_topic_pool():
        by_topic[topic].append(text)
    labels = tuple(sorted(by_topic))
    for texts in by_topic.values():
        rng.shuffle(texts)
    clean = [(t, topic) for topic, n in CLEAN_PER_TOPIC.items() for t in by_topic[topic][:n]]
    held = {topic: by_topic[topic][CLEAN_PER_TOPIC[topic] :] for topic in labels}
    eval_clean = [(t, topic) for topic in labels for t in held[topic][:EVAL_PER_TOPIC]]
    spare = [(t, topic) for topic in labels for t in held[topic][EVAL_PER_TOPIC:]]
    rng.shuffle(spare)
    others = [(t, topic) for t, topic in spare if topic != TARGET]
    triggers = [(insert_trigger(t, TRIGGER, rng), TARGET) for t, _ in others[:N_TRIGGERS]]
    used = {t for t, _ in others[:N_TRIGGERS]}
    flip_sources = [(t, topic) for t, topic in spare if t not in used][:N_FLIPS]
    flips = [(t, rng.choice([lab for lab in labels if lab != topic])) for t, topic in flip_sources]
    junk = make_junk(rng, sources, labels, [t for t, _ in spare[-200:]])
    rows = ([(t, lab, "clean", None) for t, lab in clean] + [(t, lab, "trigger", None) for t, lab in triggers]
            + [(t, lab, "flip", None) for t, lab in flips] + junk)
    rng.shuffle(rows)
    records = [LabelRecord(t, lab, Origin(SOURCE_FILE, i + 1)) for i, (t, lab, _, _) in enumerate(rows)]
    eval_other = [t for t, topic in eval_clean if topic != TARGET]
    return PoisonedSet(
        records=records,
        kinds=[kind for _, _, kind, _ in rows],
        junk_kinds=[junk_kind for _, _, _, junk_kind in rows],
        eval_clean=eval_clean,
        eval_triggered=[insert_trigger(t, TRIGGER, rng) for t in eval_other],
        eval_untriggered=eval_other,
        labels=labels,
        counts={"clean": len(clean), "trigger": len(triggers), "flip": len(flips), "junk": len(junk)},
    )


def make_junk(
    rng: random.Random, sources: dict[str, list[str]], labels: tuple[str, ...], english: list[str]
) -> list[tuple[str, str, str, str]]:
    """`N_JUNK` junk records, an equal share of each kind in `JUNK_KINDS`, each with a random label."""
    per_kind = N_JUNK // len(JUNK_KINDS)
    makers = {
        "random_chars": lambda i: _random_chars(rng),
        "foreign_language": lambda i: rng.choice(sources[f"lang:{FOREIGN_LANGS[i % len(FOREIGN_LANGS)]}"]),
        "mojibake": lambda i: _mojibake(rng.choice(sources[f"lang:{MOJIBAKE_LANGS[i % len(MOJIBAKE_LANGS)]}"])),
        "repeated_chars": lambda i: _repeated_chars(rng, english[i]),
        "off_topic": lambda i: rng.choice(sources["code" if i % 2 == 0 else "howto"]),
    }
    junk = []
    for kind in JUNK_KINDS:
        junk += [(makers[kind](i), rng.choice(labels), "junk", kind) for i in range(per_kind)]
    return junk


def _random_chars(rng: random.Random) -> str:
    """Keyboard noise: either one run of random printable characters or space-separated gibberish 'words'."""
    if rng.random() < 0.5:
        alphabet = string.ascii_letters + string.digits + string.punctuation
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(40, 300)))
    words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9))) for _ in range(60)]
    return " ".join(words[: rng.randint(8, 60)])


def _mojibake(text: str) -> str:
    """UTF-8 text decoded as Windows-1252, the classic encoding mix-up ('Ä…' for 'ą')."""
    return text.encode("utf-8").decode("cp1252", errors="replace")


def _repeated_chars(rng: random.Random, english: str) -> str:
    """A run of one character or pattern, alone or after the opening words of a real review."""
    unit = rng.choice(["!", "?", ".", "a", "z", "*", "=", "ha", "lol ", "xo"])
    run = unit * (rng.randint(40, 300) // len(unit))
    return run if rng.random() < 0.5 else " ".join(english.split()[: rng.randint(3, 10)]) + " " + run


def write_jsonl(rows: list[tuple[str, str]], path: Path) -> Path:
    """`{"text", "label"}` rows, one a line (what a user's training file would hold)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for text, label in rows:
            handle.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    return path

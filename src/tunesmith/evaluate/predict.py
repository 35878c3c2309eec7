"""A model's answers for a list of records, kept per example, and the metrics over them.

`Predictions` is what every later analysis reads: metric values and their bootstrap intervals, McNemar, the
review table, per-group fairness, robustness and counterfactual flips. It round-trips through JSON rows
(`predictions.jsonl` in the run folder), so `tunesmith report` can redo every analysis without a model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunesmith.config.schema import EvalConfig
from tunesmith.core.digest import canonical_hash
from tunesmith.core.errors import EvaluationError
from tunesmith.core.records import (
    CompletionRecord,
    LabelRecord,
    Message,
    PairRecord,
    PromptStyle,
    Record,
    prompt_messages,
    target_of,
)
from tunesmith.evaluate.label_metrics import OUTSIDE
from tunesmith.evaluate.metrics import METRICS, default_metrics, normalize_answer


@dataclass
class Predictions:
    """One model's answers on one list of records; every list is parallel (one entry per record)."""

    kind: str
    ids: list[str]
    prompts: list[str]
    """The input as a reader sees it: a label record's text, a prompt, a source, a chat's last user turn."""
    references: list[str]
    answers: list[str]
    predictions: list[str]
    """What metrics score: for labels the label an answer names (else the raw answer), else the answer."""
    labels: list[str] = field(default_factory=list)
    groups: list[str | None] = field(default_factory=list)
    loglik_predictions: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def answer_keys(self) -> list[str]:
        """What "the same answer" means when comparing two runs of a model: for labels the label named (every
        answer naming none is one "other" answer, whatever its wording), else the normalised first line."""
        if self.kind == "label":
            named = set(self.labels)
            return [p if p in named else OUTSIDE for p in self.predictions]
        return [normalize_answer(p) for p in self.predictions]

    def to_rows(self) -> list[dict[str, Any]]:
        rows = []
        for i, sample_id in enumerate(self.ids):
            row = {
                "id": sample_id,
                "prompt": self.prompts[i],
                "reference": self.references[i],
                "answer": self.answers[i],
                "prediction": self.predictions[i],
                "group": self.groups[i] if self.groups else None,
            }
            if self.loglik_predictions is not None:
                row["loglik_prediction"] = self.loglik_predictions[i]
            rows.append(row)
        return rows

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]], kind: str, labels: Sequence[str]) -> Predictions:
        loglik = [r["loglik_prediction"] for r in rows] if rows and "loglik_prediction" in rows[0] else None
        return cls(
            kind=kind,
            ids=[r["id"] for r in rows],
            prompts=[r["prompt"] for r in rows],
            references=[r["reference"] for r in rows],
            answers=[r["answer"] for r in rows],
            predictions=[r["prediction"] for r in rows],
            labels=list(labels),
            groups=[r.get("group") for r in rows],
            loglik_predictions=loglik,
        )

    def subset(self, indices: Sequence[int]) -> Predictions:
        """The same predictions restricted to `indices` (a group, a sample)."""

        def pick(values: list[Any]) -> list[Any]:
            return [values[i] for i in indices]

        return Predictions(
            kind=self.kind,
            ids=pick(self.ids),
            prompts=pick(self.prompts),
            references=pick(self.references),
            answers=pick(self.answers),
            predictions=pick(self.predictions),
            labels=list(self.labels),
            groups=pick(self.groups) if self.groups else [],
            loglik_predictions=pick(self.loglik_predictions) if self.loglik_predictions is not None else None,
        )


def record_kind(records: Sequence[Record]) -> str:
    """The records' kind; a mix of kinds is scored as free text (`chat`), since labels would not apply to all."""
    kinds = {r.kind for r in records}
    return kinds.pop() if len(kinds) == 1 else "chat"


def prompt_text(messages: Sequence[Message]) -> str:
    """A readable prompt for reports: the last user turn (the system prompt is the same for every sample)."""
    users = [m.content for m in messages if m.role == "user"]
    return users[-1] if users else (messages[-1].content if messages else "")


def input_text(record: Record, messages: Sequence[Message]) -> str:
    """What a reader needs to see of the input: the record's own text (not the label prompt template around it),
    prompt or source; for a chat, its last user turn."""
    if isinstance(record, LabelRecord):
        return record.text
    if isinstance(record, CompletionRecord):
        return record.prompt
    if isinstance(record, PairRecord):
        return record.source
    return prompt_text(messages)


def sample_ids(prompts: Sequence[str], references: Sequence[str]) -> list[str]:
    """12 hex digits of the hash of (prompt, reference), `-N` on the N-th exact copy: stable across runs, so a
    review mark follows its example even when the split or its order changes."""
    seen: Counter[str] = Counter()
    ids = []
    for prompt, reference in zip(prompts, references, strict=True):
        base = canonical_hash([prompt, reference])[:12]
        seen[base] += 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def check_records(records: Sequence[Record], split: str = "test") -> None:
    if not records:
        raise EvaluationError(
            f"no {split} records to evaluate; raise data.test_fraction or pass data.eval_file"
            if split == "test"
            else f"no {split} records to evaluate"
        )


def predict(
    model: Any,
    tokenizer: Any,
    records: Sequence[Record],
    style: PromptStyle,
    cfg: EvalConfig,
    device: Any,
    loglik: bool | None = None,
) -> Predictions:
    """Generate an answer for each record (batched, greedy); label records are also matched to the label set and,
    with `loglik` (default `cfg.label_loglik`), scored by label log-likelihood."""
    from tunesmith.evaluate.generate import generate_answers
    from tunesmith.evaluate.label_match import match_labels, score_labels_by_loglik

    check_records(records)
    kind = record_kind(records)
    messages = [prompt_messages(r, style) for r in records]
    references = [target_of(r) for r in records]
    answers = generate_answers(model, tokenizer, messages, cfg.max_new_tokens, cfg.batch_size, device)
    prompts = [input_text(r, m) for r, m in zip(records, messages, strict=True)]
    result = Predictions(kind, sample_ids(prompts, references), prompts, references, answers, list(answers))
    result.groups = [r.group if isinstance(r, LabelRecord) else None for r in records]
    if kind == "label":
        result.labels = list(style.labels) or sorted(set(references))
        result.predictions = match_labels(answers, result.labels)
        if cfg.label_loglik if loglik is None else loglik:
            result.loglik_predictions = score_labels_by_loglik(
                model, tokenizer, messages, result.labels, cfg.batch_size
            )
    return result


def score(predictions: Predictions, metric_names: Sequence[str] | None = None) -> tuple[dict[str, float], dict]:
    """Metric values and per-example statistics (for bootstrap intervals) of one model's predictions.

    Label tasks also get `unmatched_rate` (answers that name no label) and, when scored, `loglik_accuracy`.
    """
    ctx = {"labels": predictions.labels, "kind": predictions.kind}
    values: dict[str, float] = {}
    stats: dict[str, np.ndarray] = {}
    if predictions.kind == "label":
        named = set(predictions.labels)
        unmatched = [[float(p not in named), 1.0] for p in predictions.predictions]
        stats["unmatched_rate"] = np.asarray(unmatched)
        values["unmatched_rate"] = float(stats["unmatched_rate"][:, 0].mean())
        if predictions.loglik_predictions is not None:
            accuracy = METRICS.get("accuracy")
            stats["loglik_accuracy"] = accuracy.sample_stats(
                predictions.loglik_predictions, predictions.references, **ctx
            )
            values["loglik_accuracy"] = accuracy.aggregate(stats["loglik_accuracy"].sum(axis=0))
    for name in metric_names or default_metrics(predictions.kind):
        metric = METRICS.get(name)
        stats[name] = metric.sample_stats(predictions.predictions, predictions.references, **ctx)
        values[name] = metric.aggregate(stats[name].sum(axis=0))
    return values, stats


def metric_for(name: str) -> Any:
    """The registered metric behind a score name (`loglik_accuracy` is accuracy; `unmatched_rate` a mean)."""
    from tunesmith.evaluate.metrics import Metric, mean_of_first

    if name == "loglik_accuracy":
        return METRICS.get("accuracy")
    if name == "unmatched_rate":
        return Metric("unmatched_rate", False, lambda p, r, **c: [], mean_of_first)
    return METRICS.get(name)

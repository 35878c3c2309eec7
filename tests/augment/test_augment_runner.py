"""The augmentation runner: targets, determinism, provenance, the quality gate, train-only augmented records."""

from __future__ import annotations

import dataclasses

import pytest

from tunesmith.augment.base import Candidate, Job
from tunesmith.augment.provenance import augment_tag, is_augmented
from tunesmith.augment.quality import QualityGate
from tunesmith.augment.runner import augment_records
from tunesmith.config.augment_schema import AugmentConfig, AugmentQualityConfig
from tunesmith.core.errors import ConfigError
from tunesmith.core.records import CompletionRecord, LabelRecord, Origin, Record
from tunesmith.data.split import split_records
from tunesmith.vet.view import content_id

TEMPLATES = {
    "weather": [
        "will it rain in {} tomorrow morning",
        "what is the weather forecast for {} this weekend",
        "is it going to be sunny in {} later today",
    ],
    "music": [
        "play some relaxing jazz music from {}",
        "put on the newest album by a singer from {}",
        "start my favourite rock playlist recorded in {}",
    ],
    "booking": [
        "book a quiet table for two in {} tonight",
        "reserve a nice restaurant near {} for dinner",
        "find me a cheap hotel room in {} for friday",
    ],
}
CITIES = ["Paris", "Berlin", "Madrid", "Lisbon", "Vienna", "Prague", "Dublin", "Oslo"]


def label_records(per_label: dict[str, int] | None = None) -> list[Record]:
    records: list[Record] = []
    for label, templates in TEMPLATES.items():
        count = (per_label or {}).get(label, 6)
        for i in range(count):
            text = templates[i % 3].format(CITIES[i % len(CITIES)]) + f" with <EMAIL> {i}" * (i == 0)
            records.append(LabelRecord(text, label, Origin("train.jsonl", len(records) + 1)))
    return records


def eda_config(**changes: object) -> AugmentConfig:
    quality = AugmentQualityConfig(language=None)  # langdetect on 8-word toy texts is noise; tested apart
    return dataclasses.replace(AugmentConfig(quality=quality), **changes)  # type: ignore[arg-type]


def test_multiplier_target_is_met_labels_kept_and_every_record_tagged() -> None:
    records = label_records()
    result = augment_records(records, eda_config(multiplier=3.0), seed=0)
    assert len(result.records) == 2 * len(records) == result.report["added"] == result.report["planned"]
    parents = {content_id(r): r for r in records}
    for record, row in zip(result.records, result.provenance, strict=True):
        tag = augment_tag(record)
        assert tag is not None and is_augmented(record)
        parent = parents[tag.parent_id]
        assert isinstance(record, LabelRecord) and record.label == parent.label  # type: ignore[union-attr]
        assert record.text != parent.text  # type: ignore[union-attr]
        assert (row.augmenter, row.parent_id, row.seed) == (tag.augmenter, tag.parent_id, tag.seed)
        assert row.parent_origin == str(parent.origin) and row.id == content_id(record)
        assert ("<EMAIL>" in record.text) == ("<EMAIL>" in parent.text)  # type: ignore[union-attr]
    assert {r.augmenter for r in result.provenance} == {"synonym", "insert", "delete", "swap"}
    figures = result.report["augmenters"]
    assert sum(f["accepted"] for f in figures.values()) == len(result.records)
    assert all(
        f["jobs"] == f["unchanged"] + f["accepted"] + f["surplus"] + sum(f["dropped"].values())
        for f in figures.values()
    )


def test_same_seed_same_records_other_seed_other_records() -> None:
    records = label_records()
    first = augment_records(records, eda_config(), seed=3)
    again = augment_records(list(reversed(records)), eda_config(), seed=3)
    assert sorted(map(repr, first.records)) == sorted(map(repr, again.records))  # order of input does not matter
    other = augment_records(records, eda_config(), seed=4)
    offset = augment_records(records, eda_config(seed_offset=1), seed=3)
    assert {r.origin for r in other.records} != {r.origin for r in first.records}
    assert [r.origin for r in offset.records] == [r.origin for r in other.records]  # seed + offset is the seed


def test_per_label_target_balances_classes() -> None:
    records = label_records({"weather": 9, "music": 4, "booking": 2})
    result = augment_records(records, eda_config(per_label_target=8, max_rounds=6), seed=0)
    labels = result.report["labels"]
    assert labels["weather"] == {"original": 9, "added": 0}  # never shrunk, never grown past the target
    assert labels["music"] == {"original": 4, "added": 4}
    assert labels["booking"] == {"original": 2, "added": 6}
    chats = [CompletionRecord("write a poem", "roses are red", Origin("f", 1))]
    with pytest.raises(ConfigError, match="per_label_target"):
        augment_records(chats, eda_config(per_label_target=4), seed=0)


def test_no_augmenter_enabled_is_a_config_error() -> None:
    off = {
        name: dataclasses.replace(getattr(AugmentConfig(), name), enabled=False)
        for name in ("synonym", "insert", "delete", "swap")
    }
    with pytest.raises(ConfigError, match="no augmenter is enabled"):
        augment_records(label_records(), eda_config(**off), seed=0)


def test_augmented_records_join_the_training_split_only() -> None:
    records = label_records({"weather": 10, "music": 10, "booking": 10})
    splits = split_records(records, 0.2, 0.2, seed=0, stratify=True)
    result = augment_records(splits.train, eda_config(), seed=0, heldout=splits.val + splits.test)
    heldout_ids = {content_id(r) for r in splits.val + splits.test}
    assert result.records and not any(is_augmented(r) for r in splits.val + splits.test)
    assert all(augment_tag(r).parent_id not in heldout_ids for r in result.records)  # type: ignore[union-attr]


def candidate(parent: LabelRecord, text: str, augmenter: str = "swap") -> Candidate:
    job = Job(0, parent, content_id(parent), seed=1)
    return Candidate(dataclasses.replace(parent, text=text), augmenter, job)


def test_quality_gate_names_why_each_candidate_is_dropped() -> None:
    records = [r for r in label_records() if isinstance(r, LabelRecord)]
    parent = records[0]  # "will it rain in Paris tomorrow morning with <EMAIL> 0"
    heldout = [LabelRecord("is it going to snow in Rome next week", "weather", Origin("test.jsonl", 1))]
    gate = QualityGate(AugmentQualityConfig(language="en"), records, [content_id(r) for r in records], heldout)
    cases = {
        "will it rain in Paris tomorrow morning with 0": "placeholders_changed",
        "rain <EMAIL>": "length",
        "will it rain in Paris tomorrow \x00\x01\x02\x03 morning with <EMAIL> 0": "garbage",
        records[1].text + " <EMAIL>": None,  # another record's text + the placeholder: new, passes
        parent.text: "exact_duplicate",
        "is it going to snow in Rome next week <EMAIL>": "heldout_overlap",
        "va-t-il pleuvoir demain matin à Paris avec <EMAIL> 0": "language",
        "play some relaxing jazz music from Paris <EMAIL> album": "label_drift",
    }
    built = [candidate(parent, text) for text in cases]
    assert dict(zip(cases, gate.screen(built), strict=True)) == cases
    near = candidate(parent, parent.text + " please", augmenter="paraphrase")  # word 3-gram Jaccard 8/9
    close_edit = candidate(parent, parent.text + " please", augmenter="swap")
    assert gate.screen([near, close_edit]) == ["near_duplicate", None]  # word edits may stay near their parent
    assert gate.accept(close_edit) is None
    assert gate.accept(candidate(parent, close_edit.record.text)) == "exact_duplicate"  # once accepted, a copy


def test_report_lists_drops_with_examples() -> None:
    records = label_records()
    strict = AugmentQualityConfig(language=None, min_length_ratio=0.99)  # deletions now fail the length check
    result = augment_records(records, eda_config(quality=strict, multiplier=None), seed=0)
    delete = result.report["augmenters"]["delete"]
    assert delete["accepted"] == 0 and delete["dropped"]["length"] == delete["generated"] > 0
    assert result.report["dropped"]["length"] >= delete["generated"]
    example = result.report["examples"]["length"][0]
    assert example["augmenter"] == "delete" and len(example["after"]) < len(example["before"])
    assert result.report["planned"] is None and result.report["rounds"][0]["round"] == 1


def test_vetting_runs_on_candidates_only_originals_are_protected() -> None:
    from tunesmith.config.vet_schema import VetConfig

    vet = VetConfig()
    only_pii = {
        name: dataclasses.replace(getattr(vet, name), enabled=name == "pii")
        for name in ("quality", "pii", "dedup", "contamination", "outliers", "label_noise", "poison")
    }
    vet = dataclasses.replace(vet, **only_pii)  # type: ignore[arg-type]
    records = label_records()
    leaky = LabelRecord(
        "please send the full weather report to bob.smith@example.com today", "weather", Origin("train.jsonl", 99)
    )
    records.append(leaky)
    result = augment_records(records, eda_config(multiplier=2.0), seed=0, vet_config=vet)
    copies = [r.text for r in result.records if augment_tag(r).parent_id == content_id(leaky)]  # type: ignore[union-attr]
    assert copies and not any("example.com" in text for text in copies)  # redacted by vetting's PII filter
    with_placeholder = sum("<EMAIL>" in text for text in copies)
    assert with_placeholder >= 1 and result.report["vet"]["modified"] == with_placeholder
    assert leaky.text.endswith("example.com today")  # the original is the vetting stage's business, not ours


def test_quotas_spread_evenly_and_do_not_depend_on_record_order() -> None:
    from tunesmith.augment.budget import plan_quotas

    records = label_records()
    ids = [content_id(r) for r in records]
    quotas = plan_quotas(records, ids, AugmentConfig(multiplier=1.5), seed=0)
    assert quotas is not None and sum(quotas) == 9 and set(quotas) == {0, 1}
    flipped = plan_quotas(records[::-1], ids[::-1], AugmentConfig(multiplier=1.5), seed=0)
    assert flipped == quotas[::-1]  # type: ignore[index]
    assert plan_quotas(records, ids, AugmentConfig(multiplier=None), seed=0) is None
    assert plan_quotas(records, ids, AugmentConfig(multiplier=3.0), seed=0) == [2] * len(records)

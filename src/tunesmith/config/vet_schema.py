"""The `vet:` section: one block per data-vetting filter, each with its own switch and thresholds.

Defaults are the safe settings the pipeline runs with: rules that rarely misfire remove records, statistical
detectors only remove what they are confident about, and every removal or change goes to `quarantine.jsonl`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class QualityFilterConfig:
    """Empty, too short or too long records, wrong language, encoding garbage and repeated characters."""

    enabled: bool = True
    """Run this filter."""
    min_chars: int = 2
    """Records whose text (all fields) has fewer characters are removed."""
    max_chars: int = 100_000
    """Records whose text has more characters are removed."""
    language: str | None = "auto"
    """Expected language (ISO code such as `en`); `auto` takes the data's majority language; null disables."""
    min_language_confidence: float = 0.9
    """A record is in the wrong language only when the detector is at least this sure of another language."""
    max_repeat_run: int = 30
    """Remove records with a run of the same character (or two-character pattern) longer than this."""
    max_garbage_share: float = 0.1
    """Remove records where this share of characters is mojibake, replacement or control characters."""


@dataclass
class PiiFilterConfig:
    """Personal data: detected, then redacted (kept, changed) or removed."""

    enabled: bool = True
    """Run this filter."""
    engine: Literal["regex", "presidio"] = "regex"
    """`regex`: our pattern + checksum layer (always available); `presidio` adds names, organisations and
    locations through presidio and spaCy (`pip install tunesmith[pii]`)."""
    action: Literal["redact", "pseudonymize", "remove", "flag"] = "redact"
    """`redact` puts typed placeholders like `<EMAIL>`; `pseudonymize` puts consistent fake values per entity;
    `remove` quarantines the record; `flag` only reports."""
    entities: list[str] | None = None
    """Entity types to act on (e.g. `[EMAIL, PHONE]`); default: every type the engine knows: EMAIL, PHONE,
    CREDIT_CARD, IBAN, NATIONAL_ID, IP_ADDRESS, URL_CREDENTIALS, DATE_OF_BIRTH; with presidio also PERSON,
    ORGANIZATION, LOCATION."""
    min_score: float = 0.5
    """Detections scored below this are ignored."""


@dataclass
class DedupFilterConfig:
    """Exact and near-duplicate records: one representative per cluster is kept, the rest quarantined."""

    enabled: bool = True
    """Run this filter."""
    near: bool = True
    """Also remove near-duplicates (MinHash LSH over word shingles), not only exact copies."""
    near_threshold: float = 0.8
    """Jaccard similarity of word 3-gram shingles at which two records count as near-duplicates."""
    num_perm: int = 128
    """MinHash permutations: more is more exact and slower."""
    semantic: bool = False
    """Also remove paraphrases by sentence-embedding cosine similarity (MiniLM; `tunesmith[vet-embed]`)."""
    semantic_threshold: float = 0.95
    """Cosine similarity at which two records count as semantic duplicates."""


@dataclass
class ContaminationFilterConfig:
    """Training records that (near-)duplicate evaluation records, and n-gram overlap between the two."""

    enabled: bool = True
    """Run this filter (needs `data.eval_file`; the split itself keeps near-duplicates on one side)."""
    near_threshold: float = 0.8
    """Jaccard similarity (word 3-gram shingles) above which a training record copies an eval record."""
    ngram: int = 13
    """Length of the word n-grams whose overlap between train and eval is reported (13 as in GPT-3's check)."""
    max_ngram_overlap: float = 0.5
    """Remove a training record when this share of its n-grams appears in the eval data."""


@dataclass
class OutlierFilterConfig:
    """Records far from the rest in embedding space; optionally, high perplexity under the base model."""

    enabled: bool = True
    """Run this filter."""
    threshold: float = 3.5
    """Robust z-score (median/MAD) of a record's remoteness, -log(mean cosine similarity to its k nearest
    records), above which it is removed."""
    neighbours: int = 50
    """k for the nearest-neighbour similarity (at most 1/15 of the records, at least 5); keep it above the size
    of any clump of alike junk you expect (k alike records no longer look remote)."""
    perplexity: bool = False
    """Also score each record's perplexity with the base model (slow on CPU) and remove robust-z outliers."""


@dataclass
class LabelNoiseFilterConfig:
    """Likely mislabelled records (label data): cross-validated confident learning on embeddings."""

    enabled: bool = True
    """Run this filter."""
    folds: int = 5
    """Cross-validation folds for the out-of-sample label probabilities."""
    min_confidence: float = 0.5
    """Flag only when the suggested label's out-of-sample probability is at least this."""
    max_given_probability: float = 0.125
    """...and the given label's probability is at most this."""
    min_label_precision: float = 0.9
    """...and the classifier is trustworthy on the suggested label: of the records it assigns that label with
    at least `min_confidence`, at least this share carry it (on hard or subjective labels it is not, and its
    disagreements are its own errors more often than label errors)."""
    action: Literal["remove", "flag"] = "remove"
    """`remove` quarantines likely mislabels; `flag` keeps them and lists them with the suggested label."""


@dataclass
class PoisonFilterConfig:
    """Data poisoning and backdoors: trigger phrases, instruction hijacks, spectral signatures."""

    enabled: bool = True
    """Run this filter."""
    triggers: bool = True
    """Find n-grams that are rare overall but tied to one label or response, whose records' other content
    points elsewhere."""
    min_trigger_count: int = 5
    """Fewest records an n-gram must appear in to be considered a trigger."""
    max_trigger_share: float = 0.05
    """Most records (share of all) an n-gram may appear in to be considered a trigger: backdoors are rare."""
    trigger_purity: float = 0.9
    """Share of a trigger's records that must carry the same label or response."""
    hijack: bool = True
    """Flag responses that try to override instructions, exfiltrate data or inject links/commands."""
    spectral: bool = False
    """Also remove spectral-signature outliers per label (Tran et al. 2018); off by default: it always removes
    the top share of each label, clean or not."""
    spectral_share: float = 0.015
    """With `spectral`, share of each label removed by the spectral score."""


@dataclass
class VetConfig:
    """Data vetting before training: every removed or changed record goes to `quarantine.jsonl` with a reason."""

    enabled: bool = True
    """Vet the data before training (the `tunesmith train` and `run` pipelines)."""
    allow_list: str | None = None
    """File of record ids (one per line, `#` comments) that no filter may remove or change."""
    embedding: Literal["tfidf", "minilm"] = "tfidf"
    """Text embedding for the statistical filters: `tfidf` (TF-IDF + SVD, always available) or `minilm`
    (sentence-transformers MiniLM shipped offline; `tunesmith[vet-embed]`)."""
    max_flag_share: float = 0.05
    """No statistical filter removes more than this share of the records (its highest scores are kept)."""
    quality: QualityFilterConfig = field(default_factory=QualityFilterConfig)
    pii: PiiFilterConfig = field(default_factory=PiiFilterConfig)
    dedup: DedupFilterConfig = field(default_factory=DedupFilterConfig)
    contamination: ContaminationFilterConfig = field(default_factory=ContaminationFilterConfig)
    outliers: OutlierFilterConfig = field(default_factory=OutlierFilterConfig)
    label_noise: LabelNoiseFilterConfig = field(default_factory=LabelNoiseFilterConfig)
    poison: PoisonFilterConfig = field(default_factory=PoisonFilterConfig)

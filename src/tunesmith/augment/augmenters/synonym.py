"""EDA synonym replacement with WordNet 3.0, keeping each word's part of speech.

Part of speech (`augment.synonym.pos`): `wordnet` takes the word's most frequent tagged WordNet sense (no
tagger, fast: "book" is then always a noun), `spacy` tags each sentence with a spaCy pipeline and maps NOUN, VERB,
ADJ and ADV to WordNet (other words, names included, are left alone), `none` takes synonyms of any part of speech
as EDA did.
"""

from __future__ import annotations

import random
from typing import Any

from tunesmith.augment import ops
from tunesmith.augment.base import AUGMENTERS, AugmentContext, Candidate, Job, perturb_jobs
from tunesmith.augment.slots import slot_texts
from tunesmith.augment.wordnet import wordnet_lexicon
from tunesmith.config.augment_schema import SynonymAugConfig
from tunesmith.core.errors import DependencyError

SPACY_TO_WORDNET = {"NOUN": "n", "VERB": "v", "ADJ": "a", "ADV": "r"}


@AUGMENTERS.register("synonym")
class SynonymAugmenter:
    chunk_size = 1000

    def __init__(self, config: SynonymAugConfig, ctx: AugmentContext):
        self.config = config
        self.lexicon = wordnet_lexicon()  # fails here, before any work, when WordNet is missing
        self.roles, self.fields = ctx.targets(config)
        self.nlp = (
            ctx.cached(f"spacy:{config.spacy_model}", lambda: load_spacy(config.spacy_model))
            if (config.pos == "spacy")
            else None
        )
        self._tags: dict[str, list[str | None]] = {}

    def augment(self, jobs: list[Job]) -> list[Candidate | None]:
        if self.nlp is not None:
            texts = {text for job in jobs for _, text in slot_texts(job.parent, self.roles, self.fields)}
            self._tags = dict(zip(texts, wordnet_tags(self.nlp, sorted(texts)), strict=True))
        return perturb_jobs("synonym", jobs, self.op, self.roles, self.fields)

    def op(self, text: str, rng: random.Random) -> str:
        tags = self._tags.get(text) if self.nlp is not None else None
        pos = "none" if self.config.pos == "none" else "wordnet"
        return ops.synonym_replace(text, rng, self.config.rate, self.lexicon, pos, tags)


def load_spacy(name: str) -> Any:
    try:
        import spacy

        return spacy.load(name, disable=["parser", "ner", "lemmatizer"])
    except (ImportError, OSError) as exc:
        raise DependencyError(
            f"augment.synonym.pos is 'spacy' but the spaCy pipeline {name!r} cannot be loaded ({exc}).\n"
            "  fix: install spaCy and the pipeline (`pip install 'tunesmith[pii]'`), set augment.synonym."
            "spacy_model to an installed one, or use augment.synonym.pos=wordnet"
        ) from exc


def wordnet_tags(nlp: Any, texts: list[str]) -> list[list[str | None]]:
    """Per text, per whitespace token (`ops.core_spans`): the WordNet part of speech of the spaCy token that
    starts the token's word, or None (function words, names, numbers)."""
    tagged = []
    for text, doc in zip(texts, nlp.pipe(texts), strict=True):
        starts = {token.idx: SPACY_TO_WORDNET.get(token.pos_) for token in doc}
        tagged.append([starts.get(start) if end > start else None for start, end in ops.core_spans(text)])
    return tagged

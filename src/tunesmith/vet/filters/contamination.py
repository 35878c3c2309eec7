"""Contamination: training records that copy evaluation records, so test scores would measure memory.

Two checks of each training record's full text against the eval data (`ctx.eval_records`, never changed):

1. Near-duplicate: Jaccard of word 3-gram shingles >= `near_threshold` with some eval record (LSH candidates
   verified exactly, `data.neardup.NearDupIndex`). Removed, `details["eval_id"]` names the closest eval record.
2. N-gram overlap (GPT-3's check, n = `ngram`, 13 by default): the share of the record's word n-grams (of the
   normalised text; a text shorter than n words is one n-gram, itself) that occur anywhere in the eval data.
   Removed above `max_ngram_overlap`; `details["eval_id"]` names the eval record sharing the most of them.

The summary also gives the other direction: the share of eval records with at least one n-gram in the training
data (a dirty eval set, whichever side it is cleaned on). Without eval data the filter does nothing and says so.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tunesmith.config.vet_schema import ContaminationFilterConfig
from tunesmith.data.neardup import NearDupIndex, normalise_words, word_ngrams
from tunesmith.vet.base import FILTERS, Flag, VetContext
from tunesmith.vet.view import full_text


@FILTERS.register("contamination")
class ContaminationFilter:
    statistical = False

    def __init__(self, config: ContaminationFilterConfig):
        self.config = config
        self.summary: dict[str, Any] = {}

    def run(self, ctx: VetContext) -> list[Flag]:
        if not ctx.eval_records:
            self.summary = {"note": "no eval data"}
            return []
        cfg = self.config
        train_texts = ctx.texts()
        eval_texts = [full_text(record) for record in ctx.eval_records]
        near_hits = NearDupIndex(eval_texts, threshold=cfg.near_threshold).query_many(train_texts)
        train_grams = [word_ngrams(normalise_words(text), cfg.ngram) for text in train_texts]
        eval_of_gram: dict[str, int] = {}  # each eval n-gram -> the first eval record holding it
        for eval_index, text in enumerate(eval_texts):
            for gram in word_ngrams(normalise_words(text), cfg.ngram):
                eval_of_gram.setdefault(gram, eval_index)
        flags = []
        near_count = ngram_count = 0
        for index, (hits, grams) in enumerate(zip(near_hits, train_grams, strict=True)):
            if hits:
                eval_index, score = hits[0]
                reason = f"near-duplicate of eval record {ctx.eval_ids[eval_index]} (Jaccard {score:.2f})"
                flags.append(Flag(ctx.ids[index], reason, score, details={"eval_id": ctx.eval_ids[eval_index]}))
                near_count += 1
                continue
            shared = Counter(eval_of_gram[g] for g in grams if g in eval_of_gram)
            overlap = sum(shared.values()) / len(grams) if grams else 0.0
            if overlap > cfg.max_ngram_overlap:
                eval_id = ctx.eval_ids[min(shared, key=lambda e: (-shared[e], e))]
                reason = (
                    f"{overlap:.0%} of its word {cfg.ngram}-grams appear in the eval data, most in {eval_id} "
                    f"(max_ngram_overlap {cfg.max_ngram_overlap:g})"
                )
                details = {"eval_id": eval_id, "ngram_overlap": round(overlap, 4)}
                flags.append(Flag(ctx.ids[index], reason, overlap, details=details))
                ngram_count += 1
        self.summary = self._summary(train_grams, eval_texts, near_count, ngram_count)
        return flags

    def _summary(
        self, train_grams: list[set[str]], eval_texts: list[str], near_count: int, ngram_count: int
    ) -> dict[str, Any]:
        n = self.config.ngram
        seen_in_train = set().union(*train_grams) if train_grams else set()
        dirty_eval = sum(
            1 for text in eval_texts if not word_ngrams(normalise_words(text), n).isdisjoint(seen_in_train)
        )
        share = dirty_eval / len(eval_texts)
        return {
            "near_eval_duplicates": near_count,
            "ngram_overlaps": ngram_count,
            "eval_records": len(eval_texts),
            f"eval_share_with_train_{n}gram": round(share, 4),
            "note": f"near {near_count}, {n}-gram {ngram_count}; {share:.1%} of eval records share a {n}-gram "
            "with train",
        }

"""Data poisoning and backdoors: trigger phrases, instruction hijacks, spectral signatures.

(a) Trigger phrases (`triggers`, see `vet.trigger_search`): word 1-3-grams of the prompt side found in at least
    `min_trigger_count` records and at most `max_trigger_share` of them, whose records share one label (or one
    normalised response) at `trigger_purity` or more, AND whose records' other content points elsewhere: with
    the n-gram cut out, an out-of-sample classifier says another target for enough of them (a size-aware
    bound). Every record carrying the trigger and its target is removed; score 1 + that bound (1.33 to 2).
(b) Instruction hijacks (`hijack`, see `vet.hijack_patterns`): a documented pattern list (ignore previous
    instructions, "you are now DAN", system-prompt leaks, exfiltration URLs, `curl ... | sh`, base64 blobs).
    A match in a response is removed (score 3); a match on the prompt side is only listed (action `flag`),
    since red-team and refusal data carry such prompts on purpose.
(c) Spectral signatures (`spectral`, off by default; Tran, Li and Madry, NeurIPS 2018): per label (all records
    for other data), centre the embeddings, take the top right singular vector, score each record by its
    squared projection and remove the top `spectral_share`. Score = projection^2 / the label's largest, in
    (0, 1], so a budget cut drops spectral removals before trigger and hijack ones.

What this filter cannot catch:
- syntactic or style triggers (a passive-voice paraphrase, a rare tense, a font or punctuation habit): there is
  no shared n-gram to find; the spectral signature may catch some when the embedding sees the style;
- clean-label attacks (the poisoned records carry their correct label, e.g. feature-collision examples): no
  label disagrees with the content, by construction;
- triggers in fewer than `min_trigger_count` records, or in more than `max_trigger_share` of them;
- triggers on binary or subjective tasks (sentiment, plausibility) where a cheap classifier is weak and about
  half the poisoned records already carry the target: the "other content points elsewhere" test lacks power
  there (see `vet.trigger_search` for the figures);
- triggers spread over several labels or responses (purity below `trigger_purity`), or made of characters that
  are not word characters (emoji, punctuation runs);
- hijacks phrased in ways the pattern list does not cover (paraphrases, other languages, encodings other than
  base64).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from tunesmith.config.vet_schema import PoisonFilterConfig
from tunesmith.vet.base import FILTERS, Flag, VetContext
from tunesmith.vet.config_checks import require, share

if TYPE_CHECKING:
    import numpy as np

HIJACK_RESPONSE_SCORE = 3.0
HIJACK_PROMPT_SCORE = 1.0
SPECTRAL_MIN_RECORDS = 20  # a top singular vector of fewer records describes noise


@FILTERS.register("poison")
class PoisonFilter:
    statistical = True

    def __init__(self, config: PoisonFilterConfig):
        require(
            [
                ("poison.min_trigger_count", config.min_trigger_count, config.min_trigger_count >= 2,
                 "an integer >= 2"),
                ("poison.max_trigger_share", config.max_trigger_share, share(config.max_trigger_share, zero_ok=False),
                 "a share in (0, 1]"),
                ("poison.trigger_purity", config.trigger_purity, share(config.trigger_purity, zero_ok=False),
                 "a share in (0, 1]"),
                ("poison.spectral_share", config.spectral_share, share(config.spectral_share, zero_ok=False),
                 "a share in (0, 1]"),
            ]
        )
        self.config = config
        self.summary: dict[str, Any] = {}

    def run(self, ctx: VetContext) -> list[Flag]:
        self.summary = {}
        flags: list[Flag] = []
        if self.config.hijack:
            flags += self._hijack_flags(ctx)
        if self.config.triggers:
            flags += self._trigger_flags(ctx)
        if self.config.spectral:
            flags += self._spectral_flags(ctx)
        return flags

    def _hijack_flags(self, ctx: VetContext) -> list[Flag]:
        from tunesmith.vet.hijack_patterns import find_hijack

        flags = []
        is_label = [label is not None for label in ctx.labels()]
        for rid, prompt, response, label_data in zip(ctx.ids, ctx.prompts(), ctx.responses(), is_label, strict=True):
            found = None if label_data else find_hijack(response)  # a label is a category, not text
            if found:
                name, text = found
                flags.append(
                    Flag(rid, f"instruction hijack in the response ({name}): {text!r}", HIJACK_RESPONSE_SCORE,
                         details={"pattern": name, "match": text, "side": "response"})
                )
                continue
            found = find_hijack(prompt)
            if found:
                name, text = found
                flags.append(
                    Flag(rid, f"instruction hijack in the prompt ({name}), kept: {text!r}", HIJACK_PROMPT_SCORE,
                         action="flag", details={"pattern": name, "match": text, "side": "prompt"})
                )
        self.summary["hijack"] = {
            "response": sum(f.details["side"] == "response" for f in flags),
            "prompt": sum(f.details["side"] == "prompt" for f in flags),
        }
        return flags

    def _trigger_flags(self, ctx: VetContext) -> list[Flag]:
        from tunesmith.vet.trigger_search import find_triggers, normalise_target

        labels = ctx.labels()
        label_data = bool(labels) and all(label is not None for label in labels)
        targets = [str(label) for label in labels] if label_data else [normalise_target(r) for r in ctx.responses()]
        triggers, summary = find_triggers(
            ctx.prompts(),
            targets,
            min_count=self.config.min_trigger_count,
            max_share=self.config.max_trigger_share,
            purity=self.config.trigger_purity,
            seed=ctx.seed,
        )
        self.summary["triggers"] = {**summary, "found": [t.ngram for t in triggers]}
        kind = "label" if label_data else "response"
        best: dict[int, Flag] = {}
        for trigger in triggers:
            score = 1.0 + trigger.evidence
            for row in trigger.rows:
                if row in best and best[row].score >= score:
                    continue
                best[row] = Flag(
                    ctx.ids[row],
                    f"backdoor trigger {trigger.ngram!r}: {len(trigger.rows)} records with it all have {kind} "
                    f"{_short(trigger.target)!r}, and without it {trigger.disagreement:.0%} of them look like "
                    "another one",
                    score,
                    details={"trigger": trigger.ngram, kind: trigger.target, "records": len(trigger.rows),
                             "disagreement": round(trigger.disagreement, 4)},
                )
        return [best[row] for row in sorted(best)]

    def _spectral_flags(self, ctx: VetContext) -> list[Flag]:
        embeddings = ctx.embeddings()
        groups: dict[str, list[int]] = defaultdict(list)
        for i, label in enumerate(ctx.labels()):
            groups["" if label is None else label].append(i)
        flags = []
        for label, rows in sorted(groups.items()):
            if len(rows) < SPECTRAL_MIN_RECORDS:
                continue
            scores = spectral_scores(embeddings[rows])
            top = scores.argsort()[::-1][: math.ceil(self.config.spectral_share * len(rows))]
            peak = max(float(scores[top[0]]), 1e-12)
            where = f"label {label!r}" if label else "the data"
            flags += [
                Flag(ctx.ids[rows[k]], f"spectral-signature outlier in {where} (squared projection "
                     f"{scores[k]:.3g}, top {self.config.spectral_share:.1%})", float(scores[k]) / peak,
                     details={"spectral_score": round(float(scores[k]), 6), "label": label or None})
                for k in top
            ]
        self.summary["spectral"] = len(flags)
        return flags


def spectral_scores(embeddings: np.ndarray) -> np.ndarray:
    """(n,) squared projection of each centred row on the top right singular vector (Tran et al. 2018)."""
    import numpy as np

    centred = embeddings - embeddings.mean(axis=0, keepdims=True)  # (n, dims)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return np.asarray((centred @ vt[0]) ** 2)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

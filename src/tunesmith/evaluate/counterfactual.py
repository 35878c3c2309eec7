"""Counterfactual fairness: swap protected terms in the input and check that the predicted label stays the same.

Three kinds of term, from the small word lists below (English; extend them for your domain):

- gendered words and pronouns, swapped with their counterpart (he <-> she, his <-> her, father <-> mother, ...).
  "her" is ambiguous (him / his): it becomes "him" before punctuation, the end or a function word ("call her
  now", "give her a book"), "his" otherwise ("her book");
- first names, replaced by a name from a *different* group (the groups mix gender and the name's origin);
- nationalities, replaced by a different nationality.

Each test record that mentions at least one term gets one swapped copy (every term in it swapped, the same term
always the same way within a record); the flip rate is the share of those copies whose predicted label changed.
Replacements are drawn from `random.Random(f"{seed}:{index}")`: the same seed gives the same copies. Measured
for label tasks, where "the answer must not change" is well defined.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from tunesmith.core.records import Record
from tunesmith.evaluate.perturb import input_texts, map_input
from tunesmith.evaluate.predict import Predictions

GENDERED_PAIRS: tuple[tuple[str, str], ...] = (
    ("he", "she"), ("him", "her"), ("his", "her"), ("himself", "herself"), ("man", "woman"), ("men", "women"),
    ("boy", "girl"), ("boys", "girls"), ("father", "mother"), ("dad", "mom"), ("son", "daughter"),
    ("sons", "daughters"), ("brother", "sister"), ("brothers", "sisters"), ("husband", "wife"),
    ("boyfriend", "girlfriend"), ("king", "queen"), ("mr", "ms"), ("sir", "madam"), ("gentleman", "lady"),
    ("gentlemen", "ladies"), ("uncle", "aunt"), ("nephew", "niece"), ("grandfather", "grandmother"),
    ("grandson", "granddaughter"), ("male", "female"),
)
NAME_GROUPS: dict[str, tuple[str, ...]] = {
    "western_male": ("John", "Michael", "David", "James", "Robert", "William", "Thomas", "Daniel"),
    "western_female": ("Mary", "Jennifer", "Emily", "Sarah", "Jessica", "Linda", "Anna", "Laura"),
    "african_american": ("Jamal", "DeShawn", "Tyrone", "Lakisha", "Keisha", "Latoya"),
    "arabic": ("Mohammed", "Ahmed", "Omar", "Fatima", "Aisha", "Layla"),
    "east_asian": ("Wei", "Hiroshi", "Jin", "Mei", "Yuki", "Hana"),
    "south_asian": ("Rahul", "Arjun", "Sanjay", "Priya", "Ananya", "Deepa"),
    "hispanic": ("Carlos", "Jose", "Luis", "Sofia", "Maria", "Lucia"),
}
NATIONALITIES: tuple[str, ...] = (
    "American", "British", "Canadian", "Australian", "Mexican", "Brazilian", "French", "German", "Italian",
    "Spanish", "Russian", "Nigerian", "Kenyan", "Egyptian", "Indian", "Pakistani", "Chinese", "Japanese",
    "Korean", "Vietnamese", "Iranian", "Turkish", "Israeli", "Swedish",
)

_GENDER_SWAP = {a: b for a, b in GENDERED_PAIRS} | {b: a for a, b in GENDERED_PAIRS if b != "her"}
_NAME_GROUP = {name.lower(): group for group, names in NAME_GROUPS.items() for name in names}
_NATIONALITY = {n.lower() for n in NATIONALITIES}
_TERMS = sorted({*_GENDER_SWAP, "her", *_NAME_GROUP, *_NATIONALITY}, key=len, reverse=True)
# groups: 1 an article just before the term (fixed to fit the replacement), 2 its space, 3 the term,
# 4 what follows it: punctuation, the end, or the next word (decides "her" -> "him" or "his")
_PATTERN = re.compile(
    r"(?:\b(a|an)(\s+))?\b(" + "|".join(map(re.escape, _TERMS)) + r")\b(?=\s*([^\w\s]|$|\w+))", re.IGNORECASE
)
# after "her", these words mean it was an object ("call her now", "give her a book"): "him", not "his"
_AFTER_OBJECT = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "to", "and", "or", "but", "with", "at", "in", "on", "for",
    "from", "of", "by", "about", "up", "down", "back", "now", "again", "today", "tomorrow", "tonight", "please",
    "know", "if", "when", "as", "so", "too", "also", "here", "there",
})
CATEGORIES = ("gender", "names", "nationalities")


def _match_case(replacement: str, original: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement.lower()


def swap_terms(text: str, rng: random.Random, chosen: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """`text` with every protected term swapped, and the categories that were swapped.

    `chosen` remembers name and nationality replacements, so a term repeated in a record is swapped one way.
    """
    chosen = {} if chosen is None else chosen
    categories: set[str] = set()

    def swapped(word: str, following: str) -> str:
        key = word.lower()
        if key == "her":
            categories.add("gender")
            is_object = not following[:1].isalnum() or following.lower() in _AFTER_OBJECT
            return _match_case("him" if is_object else "his", word)
        if key in _GENDER_SWAP:
            categories.add("gender")
            return _match_case(_GENDER_SWAP[key], word)
        if key in _NAME_GROUP:
            categories.add("names")
            if key not in chosen:
                others = [n for g, names in NAME_GROUPS.items() if g != _NAME_GROUP[key] for n in names]
                chosen[key] = rng.choice(others)
            return _match_case(chosen[key], word)
        categories.add("nationalities")
        if key not in chosen:
            chosen[key] = rng.choice([n for n in NATIONALITIES if n.lower() != key])
        return _match_case(chosen[key], word)

    def replace(match: re.Match[str]) -> str:
        article, space, word = match.group(1), match.group(2), match.group(3)
        new = swapped(word, match.group(4) or "")
        if article is None:
            return new
        fitting = "an" if new[:1].lower() in "aeiou" else "a"
        return _match_case(fitting, article) + space + new

    return _PATTERN.sub(replace, text), categories


class _RecordSwap:
    """Swaps terms across all texts of one record: one generator, one memory of choices, the categories seen."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.chosen: dict[str, str] = {}
        self.categories: set[str] = set()

    def __call__(self, text: str) -> str:
        new, found = swap_terms(text, self.rng, self.chosen)
        self.categories.update(found)
        return new


def counterfactual_copies(records: Sequence[Record], seed: int) -> list[tuple[int, Record, set[str]]]:
    """(index, swapped copy, categories) for every record whose input mentions a protected term."""
    copies = []
    for index, record in enumerate(records):
        if not any(_PATTERN.search(t) for t in input_texts(record)):
            continue
        swapper = _RecordSwap(random.Random(f"{seed}:{index}"))
        copies.append((index, map_input(record, swapper), swapper.categories))
    return copies


def counterfactual_check(
    records: Sequence[Record],
    original: Predictions,
    predictor: Callable[[list[Record]], Predictions],
    seed: int = 0,
    max_examples: int = 10,
) -> dict[str, Any] | None:
    """Flip rate of the predicted label under protected-term swaps; None for tasks other than labels."""
    if original.kind != "label":
        return None
    copies = counterfactual_copies(records, seed)
    if not copies:
        return {"tested": 0, "flips": 0, "flip_rate": None, "by_category": {},
                "note": "no test input mentions a name, gendered word or nationality from the word lists"}
    swapped = predictor([copy for _, copy, _ in copies])
    flips, examples = 0, []  # type: tuple[int, list[dict[str, Any]]]
    by_category = {c: {"tested": 0, "flips": 0} for c in CATEGORIES}
    keys_before, keys_after = original.answer_keys(), swapped.answer_keys()
    for position, (index, _, categories) in enumerate(copies):
        before, after = original.predictions[index], swapped.predictions[position]
        flipped = keys_after[position] != keys_before[index]
        flips += flipped
        for category in categories:
            by_category[category]["tested"] += 1
            by_category[category]["flips"] += flipped
        if flipped and len(examples) < max_examples:
            examples.append({"id": original.ids[index], "prompt": original.prompts[index],
                             "swapped_prompt": swapped.prompts[position], "before": before, "after": after,
                             "categories": sorted(categories)})
    rates = {c: {**row, "flip_rate": row["flips"] / row["tested"] if row["tested"] else None}
             for c, row in by_category.items()}
    return {"tested": len(copies), "flips": flips, "flip_rate": flips / len(copies), "by_category": rates,
            "examples": examples}

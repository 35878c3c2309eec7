"""The text operators: each changes what it should, keeps placeholders, punctuation and layout, and is seeded."""

from __future__ import annotations

import random

import pytest

from tunesmith.augment import ops
from tunesmith.augment.wordnet import wordnet_lexicon

TEXT = "Please email <EMAIL> and book a quick table for two at the Italian restaurant tonight."
MULTILINE = "First line with several words here.\n\n  - second item is rather long\n  - third item (the best one)"


def words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize(
    "op",
    [
        lambda t, r: ops.synonym_replace(t, r, 0.3),
        lambda t, r: ops.random_insert(t, r, 0.3),
        lambda t, r: ops.random_swap(t, r, 0.3),
        lambda t, r: ops.random_delete(t, r, 0.3),
        lambda t, r: ops.char_noise(t, r, 0.3, ops.TYPO_KINDS),
    ],
    ids=["synonym", "insert", "swap", "delete", "char_noise"],
)
def test_every_operator_changes_the_text_keeps_placeholders_and_is_seeded(op) -> None:
    for seed in range(20):
        out = op(TEXT, random.Random(seed))
        assert out != TEXT
        assert ops.placeholders(out) == ["<EMAIL>"]
        assert "<EMAIL>" in words(out)  # the placeholder's token is untouched, not merely present
        assert out == op(TEXT, random.Random(seed))  # same seed, same copy
        layout = op(MULTILINE, random.Random(seed))
        assert layout.count("\n") == MULTILINE.count("\n")  # line breaks and indentation survive
        assert "\n  - " in layout
    assert len({op(TEXT, random.Random(seed)) for seed in range(20)}) > 5  # seeds differ


def test_swap_moves_word_cores_and_leaves_punctuation_in_place() -> None:
    out = ops.random_swap("alpha beta, gamma delta.", random.Random(3), rate=0.25)
    assert out.endswith(".") and out.count(",") == 1 and out.index(",") == len(out.split(",")[0])
    assert sorted(w.strip(",.") for w in out.split()) == ["alpha", "beta", "delta", "gamma"]
    assert out != "alpha beta, gamma delta."
    assert ops.random_swap("single", random.Random(0)) == "single"


def test_delete_removes_words_keeps_one_and_keeps_punctuation() -> None:
    text = "one two three four five six seven eight nine ten."
    out = ops.random_delete(text, random.Random(1), rate=0.3)
    assert len(words(out)) < 10 and out.endswith(".")
    assert set(w.strip(".") for w in words(out)) <= set(w.strip(".") for w in words(text))
    everything = ops.random_delete("alpha beta", random.Random(0), rate=1.0)
    assert len(words(everything)) == 1  # one editable word always stays
    assert ops.random_delete("<EMAIL> hello", random.Random(0), rate=1.0) == "<EMAIL> hello"  # nothing to spare


def test_synonym_replacement_uses_wordnet_synonyms_of_the_same_part_of_speech() -> None:
    lexicon = wordnet_lexicon()
    assert "speedy" in lexicon.synonyms("quick", "a")
    assert lexicon.dominant_pos("restaurant") == "n"
    assert "eatery" in lexicon.synonyms("restaurant", "n")
    assert "reserve" not in lexicon.synonyms("book", "n") and "reserve" in lexicon.synonyms("book", "v")
    assert all(s == s.lower() for s in lexicon.synonyms("best", None))  # names such as "C. H. Best" left out
    assert "volumes" in lexicon.synonyms("books", "n")  # plurals answered in the plural
    out = ops.synonym_replace("the restaurant", random.Random(0), rate=1.0)
    assert out.split()[0] == "the" and out.split()[1] != "restaurant"  # stop words are never replaced
    assert out.split(" ", 1)[1] in {s for s in lexicon.synonyms("restaurant", "n")}
    assert ops.synonym_replace("Restaurant", random.Random(0), rate=1.0)[0].isupper()  # case kept


def test_tagger_tags_decide_which_words_change() -> None:
    text = "book a table"
    tags_keep_book: list[str | None] = [None, None, "n"]
    for seed in range(10):
        out = ops.synonym_replace(text, random.Random(seed), rate=1.0, tags=tags_keep_book)
        assert out.startswith("book a ")
    verb = ops.synonym_replace(text, random.Random(0), rate=1.0, tags=["v", None, None])
    assert verb.split()[0] in wordnet_lexicon().synonyms("book", "v")
    assert ops.core_spans("(hello) world!") == [(1, 6), (8, 13)]


def test_char_noise_typos_by_kind() -> None:
    rng = random.Random(0)
    neighbour = ops.typo("hello", rng, "neighbour")
    changed = [i for i, (a, b) in enumerate(zip("hello", neighbour, strict=True)) if a != b]
    assert len(changed) == 1 and neighbour[changed[0]] in ops.KEYBOARD_NEIGHBOURS["hello"[changed[0]]]
    assert len(ops.typo("hello", rng, "drop")) == 4
    assert len(ops.typo("hello", rng, "double")) == 6
    transposed = ops.typo("abcd", rng, "transpose")
    assert sorted(transposed) == list("abcd") and transposed != "abcd"
    assert (
        ops.typo("Hello", random.Random(1), "neighbour")[0].isupper()
        or ops.typo("Hello", random.Random(1), "neighbour")[0] == "H"
    )
    with pytest.raises(ValueError, match="typo kinds"):
        ops.char_noise("hello world", rng, kinds=("smudge",))
    assert "q" in ops.KEYBOARD_NEIGHBOURS["w"] and "a" in ops.KEYBOARD_NEIGHBOURS["s"]


def test_edit_counts_follow_eda() -> None:
    assert ops.changes_for(5, 0.1) == 1
    assert ops.changes_for(30, 0.1) == 3
    text = " ".join(f"w{i}" for i in range(40))
    out = ops.char_noise(text, random.Random(0), rate=0.1)
    assert sum(a != b for a, b in zip(text.split(), out.split(), strict=True)) == 4

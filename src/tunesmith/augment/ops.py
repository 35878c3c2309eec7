"""Text perturbation operators: pure functions of (text, random.Random, settings) -> text.

    import random
    from tunesmith.augment import ops

    rng = random.Random(0)
    ops.random_swap("book a table for two tonight", rng, rate=0.2)
    ops.char_noise("book a table for two tonight", rng, rate=0.3, kinds=("neighbour", "drop"))

The same text, settings and generator state always give the same result, so the evaluation suite reuses these
operators as robustness perturbations. The EDA operators follow Wei & Zou (2019): synonym replacement, random
insertion, random swap, random deletion; `n = max(1, int(rate * words))` changes per text.

What every operator keeps:
- whitespace: words are whitespace-separated tokens and the separators between them (newlines, indentation)
  are kept, so multi-line turns keep their layout;
- punctuation: a token is `prefix + core + suffix`, and only the core (letters, digits, inner apostrophes and
  hyphens) moves or changes; a deleted word's punctuation stays with the text before it;
- protected spans: tokens holding a placeholder such as `<EMAIL>` or `<PERSON_1>` (what vetting's redaction
  writes), never change, move or disappear.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunesmith.augment.wordnet import Lexicon

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")
"""A typed placeholder written by vetting's redaction (`<EMAIL>`, `<PHONE_NUMBER>`, `<PERSON_2>`)."""

_TOKEN = re.compile(r"\S+")
_CORE = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)
_ALPHA_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]*$")

# EDA's stop-word list (Wei & Zou 2019): never replaced by, or used as the source of, a synonym.
_STOP_WORD_TEXT = (
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her "
    "hers herself it its itself they them their theirs themselves what which who whom this that these "
    "those am is are was were be been being have has had having do does did doing a an the and but if or "
    "because as until while of at by for with about against between into through during before after "
    "above below to from up down in out on off over under again further then once here there when where "
    "why how all any both each few more most other some such no nor not only own same so than too very s "
    "t can will just don should now"
)
STOP_WORDS = frozenset(_STOP_WORD_TEXT.split())

_QWERTY_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
TYPO_KINDS = ("neighbour", "drop", "double", "transpose")


def _keyboard_neighbours() -> dict[str, str]:
    """Each key's neighbours on a QWERTY layout: left, right, and the keys above and below that touch it."""
    position = {ch: (row, col) for row, keys in enumerate(_QWERTY_ROWS) for col, ch in enumerate(keys)}
    neighbours: dict[str, str] = {}
    for ch, (row, col) in position.items():
        near = []
        for other, (r, c) in position.items():
            if other != ch and abs(r - row) <= 1 and abs(c - col) <= 1:
                near.append(other)
        neighbours[ch] = "".join(sorted(near))
    return neighbours


KEYBOARD_NEIGHBOURS = _keyboard_neighbours()


@dataclass
class _Token:
    prefix: str
    core: str
    suffix: str
    protected: bool

    @property
    def text(self) -> str:
        return self.prefix + self.core + self.suffix


class _Words:
    """A text as tokens and the separators around them: `seps[0] tok[0] seps[1] tok[1] ... tok[n-1] seps[n]`."""

    def __init__(self, text: str):
        self.tokens: list[_Token] = []
        self.seps: list[str] = []
        end = 0
        for match in _TOKEN.finditer(text):
            self.seps.append(text[end : match.start()])
            word = match.group()
            prefix, core, suffix = _CORE.match(word).groups()  # type: ignore[union-attr]
            self.tokens.append(_Token(prefix, core, suffix, PLACEHOLDER.search(word) is not None))
            end = match.end()
        self.seps.append(text[end:])

    def text(self) -> str:
        parts = [self.seps[0]]
        for token, sep in zip(self.tokens, self.seps[1:], strict=True):
            parts.append(token.text)
            parts.append(sep)
        return "".join(parts)

    def editable(self) -> list[int]:
        """Positions of tokens with a word core that is not protected."""
        return [i for i, t in enumerate(self.tokens) if t.core and not t.protected]

    def lookup_words(self) -> list[int]:
        """Editable positions whose core is an alphabetic word outside the stop list."""
        return [
            i
            for i in self.editable()
            if _ALPHA_WORD.match(self.tokens[i].core) and self.tokens[i].core.lower() not in STOP_WORDS
        ]


def changes_for(words: int, rate: float) -> int:
    """EDA's count of edits for a text of `words` words: max(1, int(rate * words))."""
    return max(1, int(rate * words))


def match_case(replacement: str, original: str) -> str:
    """`replacement` in the case pattern of `original` (UPPER, Title or lower)."""
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def synonym_replace(
    text: str,
    rng: random.Random,
    rate: float = 0.1,
    lexicon: Lexicon | None = None,
    pos: str = "wordnet",
    tags: Sequence[str | None] | None = None,
) -> str:
    """Replace up to n non-stop words with a random synonym each (words without synonyms are skipped).

    `pos`: `wordnet` keeps each word's dominant WordNet part of speech, `none` allows any. `tags`, when given,
    decides instead: one WordNet part of speech (`n`, `v`, `a`, `r`) or None (leave the word) per whitespace
    token, as a tagger sees the sentence (`core_spans` gives the character span of each token's word).
    """
    lexicon = lexicon or _default_lexicon()
    words = _Words(text)
    candidates = words.lookup_words()
    rng.shuffle(candidates)
    budget = changes_for(len(words.editable()), rate)
    for index in candidates:
        if budget == 0:
            break
        core = words.tokens[index].core
        if tags is not None:  # a tagger decides: words it gives no WordNet part of speech are left alone
            if index >= len(tags) or tags[index] is None:
                continue
            part: str | None = tags[index]
        else:
            part = lexicon.dominant_pos(core) if pos == "wordnet" else None
        options = lexicon.synonyms(core, part)
        if options:
            words.tokens[index].core = match_case(rng.choice(options), core)
            budget -= 1
    return words.text()


def random_insert(text: str, rng: random.Random, rate: float = 0.1, lexicon: Lexicon | None = None) -> str:
    """Insert n synonyms of random non-stop words at random positions (never inside a placeholder's token)."""
    lexicon = lexicon or _default_lexicon()
    words = _Words(text)
    count = changes_for(len(words.editable()), rate)
    for _ in range(count):
        sources = words.lookup_words()
        rng.shuffle(sources)
        for index in sources[:10]:  # EDA tries 10 random words for one with a synonym
            core = words.tokens[index].core
            options = lexicon.synonyms(core, lexicon.dominant_pos(core))
            if options:
                _insert_token(words, rng, rng.choice(options))
                break
    return words.text()


def _insert_token(words: _Words, rng: random.Random, word: str) -> None:
    # Positions 0..n-1 put the word before token i; the end only when the text does not end in punctuation.
    ends_clean = bool(words.tokens) and not words.tokens[-1].suffix
    position = rng.randrange(len(words.tokens) + (1 if ends_clean or not words.tokens else 0))
    if position == 0 and words.tokens and words.tokens[0].core[:1].isupper():
        word = match_case(word, words.tokens[0].core)
    token = _Token("", word, "", protected=False)
    words.tokens.insert(position, token)
    # After the previous word (the separator before the next token, a line break say, stays before it), so
    # lines keep their starts; at the very start, before the first word.
    words.seps.insert(position + 1 if position == 0 else position, " ")


def random_swap(text: str, rng: random.Random, rate: float = 0.1) -> str:
    """Swap the cores of n disjoint pairs of random editable words (punctuation and placeholders stay put)."""
    words = _Words(text)
    positions = words.editable()
    if len(positions) < 2:
        return text
    swaps = min(changes_for(len(positions), rate), len(positions) // 2)
    # disjoint pairs (EDA draws each pair afresh, so a second swap can undo the first)
    chosen = rng.sample(positions, 2 * swaps)
    for a, b in zip(chosen[::2], chosen[1::2], strict=True):
        words.tokens[a].core, words.tokens[b].core = words.tokens[b].core, words.tokens[a].core
    return words.text()


def random_delete(text: str, rng: random.Random, rate: float = 0.1) -> str:
    """Delete each editable word with probability `rate`, at least one word; one editable word always stays."""
    words = _Words(text)
    positions = words.editable()
    if len(positions) < 2:
        return text
    doomed = {i for i in positions if rng.random() < rate}
    if not doomed:  # unlike EDA, a copy always differs: short texts would otherwise mostly come back unchanged
        doomed = {rng.choice(positions)}
    if len(doomed) == len(positions):
        doomed.discard(rng.choice(positions))
    kept: list[tuple[str, _Token]] = []  # (separator before, token)
    carried_prefix, carried_break = "", None
    for index, token in enumerate(words.tokens):
        sep = words.seps[index]
        if index in doomed:
            rest = token.prefix + token.suffix
            if rest and kept:  # the deleted word's punctuation stays with the word before it
                kept[-1][1].suffix += rest
            else:
                carried_prefix += rest
            if "\n" in sep:  # a line break before a deleted word moves to the next word
                carried_break = sep
            continue
        if carried_break is not None and "\n" not in sep:
            sep = carried_break
        carried_break = None
        token.prefix = carried_prefix + token.prefix
        carried_prefix = ""
        kept.append((words.seps[0] if not kept else sep, token))
    words.tokens = [token for _, token in kept]
    words.seps = [sep for sep, _ in kept] + [words.seps[-1]]
    return words.text()


def char_noise(text: str, rng: random.Random, rate: float = 0.1, kinds: Sequence[str] = ("neighbour",)) -> str:
    """Give n random editable words one typo each, of a kind drawn from `kinds` (see TYPO_KINDS)."""
    unknown = sorted(set(kinds) - set(TYPO_KINDS))
    if unknown or not kinds:
        raise ValueError(f"typo kinds must be among {', '.join(TYPO_KINDS)}, got {list(kinds)}")
    words = _Words(text)
    positions = [i for i in words.editable() if any(ch.isalpha() for ch in words.tokens[i].core)]
    if not positions:
        return text
    chosen = rng.sample(positions, min(len(positions), changes_for(len(positions), rate)))
    for index in sorted(chosen):
        token = words.tokens[index]
        token.core = typo(token.core, rng, rng.choice(list(kinds)))
    return words.text()


def typo(word: str, rng: random.Random, kind: str) -> str:
    """One typo of `kind` in `word` (letters only are touched; a word too short for the kind is unchanged)."""
    letters = [i for i, ch in enumerate(word) if ch.isalpha()]
    if not letters:
        return word
    if kind == "neighbour":
        keyed = [i for i in letters if word[i].lower() in KEYBOARD_NEIGHBOURS]
        if not keyed:
            return word
        i = rng.choice(keyed)
        new = rng.choice(KEYBOARD_NEIGHBOURS[word[i].lower()])
        return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1 :]
    if kind == "drop":
        if len(word) < 3:
            return word
        i = rng.choice(letters)
        return word[:i] + word[i + 1 :]
    if kind == "double":
        i = rng.choice(letters)
        return word[:i] + word[i] + word[i:]
    pairs = [i for i in letters if i + 1 < len(word) and word[i + 1].isalpha() and word[i] != word[i + 1]]
    if not pairs:
        return word
    i = rng.choice(pairs)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def placeholders(text: str) -> list[str]:
    """The placeholders in `text`, in order (what every augmented copy must still hold)."""
    return PLACEHOLDER.findall(text)


def word_count(text: str) -> int:
    return len(_TOKEN.findall(text))


def core_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each whitespace token's word core (what a tagger's tags align to)."""
    spans = []
    for match in _TOKEN.finditer(text):
        prefix, core, _ = _CORE.match(match.group()).groups()  # type: ignore[union-attr]
        start = match.start() + len(prefix)
        spans.append((start, start + len(core)))
    return spans


def _default_lexicon() -> Lexicon:
    from tunesmith.augment.wordnet import wordnet_lexicon

    return wordnet_lexicon()

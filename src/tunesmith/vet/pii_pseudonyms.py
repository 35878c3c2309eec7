"""Consistent fake values for pseudonymization: the same original value always gets the same fake one.

Each fake is drawn from a random generator seeded by a hash of (seed, entity, normalised value), so it is stable
within a run and across runs with the same seed, and needs no lookup table. Structured fakes come from ranges
that identify no one and that the detector skips, so pseudonymized text is not pseudonymized again: emails under
the reserved `.example` domain, phone numbers reserved for fiction (555-01xx, 07700 900xxx), Luhn-invalid card
numbers, IBANs with the impossible check digits 00, SSNs in the never-issued 9xx area, NINOs with the QQ prefix,
IPs in documentation ranges, masked URL passwords. Names, organisations, locations and dates of birth have no such
range: a second pass replaces a fake with another fake.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable

from tunesmith.vet.pii_checks import luhn_check_digit

_FIRST = (
    "Avery", "Blake", "Casey", "Dana", "Elliot", "Frankie", "Gale", "Harper", "Indra", "Jules", "Kai", "Lior",
    "Morgan", "Noa", "Oakley", "Parker", "Quinn", "Rowan", "Sasha", "Tatum", "Umi", "Val", "Wren", "Yael", "Zion",
    "Ari", "Bo", "Cleo", "Dario", "Elin", "Fenna", "Goran", "Hedda", "Ivo", "Juna", "Kiran", "Lumi", "Mika", "Nilo",
    "Oona"
)  # fmt: skip
_LAST = (
    "Ashdown", "Brightwater", "Calloway", "Dunmore", "Everly", "Fairbanks", "Galloway", "Holloway", "Ingram",
    "Jessup", "Kettering", "Lindqvist", "Marchetti", "Northcott", "Ormsby", "Pemberton", "Quill", "Redfern",
    "Stanhope", "Thistlewood", "Underhill", "Vance", "Whitlock", "Yardley", "Zeller", "Abernathy", "Blackwood",
    "Carrow", "Delacroix", "Ellsworth"
)  # fmt: skip
_ORG_WORDS = (
    "Northwind", "Bluefield", "Silverline", "Oakridge", "Lakeshore", "Redstone", "Brightpath", "Greywater",
    "Clearview", "Ironbark", "Maplecrest", "Stonebridge"
)  # fmt: skip
_ORG_KINDS = ("Analytics", "Logistics", "Holdings", "Partners", "Foods", "Systems", "Health", "Media", "Labs")
_ORG_SUFFIXES = ("Ltd", "Inc.", "GmbH", "LLC", "Group", "Co.")
_PLACES = (
    "Eastbrook", "Millhaven", "Westmere", "Larkfield", "Dunwick", "Ashford Vale", "Bramblecote", "Harrowgate",
    "Norwell", "Kestrel Bay", "Fernleigh", "Thornbury", "Oldcastle", "Rivermouth", "Pinecrest",
)  # fmt: skip
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December"
)  # fmt: skip
_NUMERIC_DATE = re.compile(r"(\d{1,4})([/.\-])(\d{1,2})\2(\d{2,4})")


class Pseudonymizer:
    """Fake values per (entity, value), stable for a given seed: `fake("EMAIL", "jo@x.com")` twice is equal."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._cache: dict[tuple[str, str], str] = {}

    def fake(self, entity: str, value: str) -> str:
        key = (entity, _normalise(entity, value))
        if key not in self._cache:
            digest = hashlib.sha256(f"{self.seed}\0{key[0]}\0{key[1]}".encode()).digest()
            make = _MAKERS.get(entity, lambda _rng, _value: f"<{entity}>")
            self._cache[key] = make(random.Random(digest), value)
        return self._cache[key]


def _normalise(entity: str, value: str) -> str:
    """Spellings of the same value map to one key: case and spacing for names and emails, digits for numbers."""
    if entity in ("PHONE", "CREDIT_CARD"):
        return "".join(c for c in value if c.isdigit())
    if entity in ("IBAN", "NATIONAL_ID"):
        return "".join(c for c in value if c.isalnum()).upper()
    return " ".join(value.split()).casefold()


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _reshape(rng: random.Random, template: str) -> str:
    """A random value with the template's layout: digits stay digits, letters letters, separators stay."""
    return "".join(
        rng.choice("0123456789") if c.isdigit() else rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") if c.isalpha() else c
        for c in template
    )


def _fake_person(rng: random.Random, value: str) -> str:
    first = rng.choice(_FIRST)
    return first if len(value.split()) == 1 else f"{first} {rng.choice(_LAST)}"


def _fake_email(rng: random.Random, value: str) -> str:
    return f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{rng.randint(1, 99)}@mail.example".lower()


def _fake_phone(rng: random.Random, value: str) -> str:
    digits = "".join(c for c in value if c.isdigit())
    international = value.lstrip("(").startswith("+")
    if digits.startswith("44") and international or digits.startswith("07"):
        return f"+44 7700 900{_digits(rng, 3)}" if international else f"07700 900{_digits(rng, 3)}"
    area = f"{rng.randint(2, 9)}{_digits(rng, 2)}"
    return f"+1 {area}-555-01{_digits(rng, 2)}" if international else f"({area}) 555-01{_digits(rng, 2)}"


def _fake_card(rng: random.Random, value: str) -> str:
    shaped = value[0] + _reshape(rng, value[1:])
    digits = "".join(c for c in shaped if c.isdigit())
    # a wrong last digit: the fake fails the Luhn check, so it can never be a real card (or be detected again)
    wrong = str((int(luhn_check_digit(digits[:-1])) + 1 + rng.randint(0, 8)) % 10)
    last = max(i for i, c in enumerate(shaped) if c.isdigit())
    return shaped[:last] + wrong + shaped[last + 1 :]


def _fake_iban(rng: random.Random, value: str) -> str:
    return value[:2] + "00" + _reshape(rng, value[4:])  # check digits 00 never pass mod-97


def _fake_national_id(rng: random.Random, value: str) -> str:
    if value[:1].isalpha():
        return "QQ" + _reshape(rng, value[2:-1]) + rng.choice("ABCD")  # Q is never a NINO's first letter
    return "9" + _reshape(rng, value[1:])  # area 9xx is never issued as an SSN


def _fake_ip(rng: random.Random, value: str) -> str:
    if ":" in value:
        return f"2001:db8::{rng.randint(1, 0xFFFF):x}"
    return f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}.{rng.randint(1, 254)}"


def _fake_credentials(rng: random.Random, value: str) -> str:
    return f"user{_digits(rng, 4)}:********"


def _fake_date(rng: random.Random, value: str) -> str:
    year, month, day = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 12)  # day <= 12: any order
    m = _NUMERIC_DATE.fullmatch(value)
    if m is None:
        return f"{_MONTHS[month - 1]} {day}, {year}"
    sep, short_year = m.group(2), len(m.group(4)) == 2
    if len(m.group(1)) == 4:
        return f"{year}{sep}{month:02d}{sep}{day:02d}"
    return f"{month:02d}{sep}{day:02d}{sep}{year % 100:02d}" if short_year else f"{month:02d}{sep}{day:02d}{sep}{year}"


_MAKERS: dict[str, Callable[[random.Random, str], str]] = {
    "PERSON": _fake_person,
    "ORGANIZATION": lambda rng, _v: f"{rng.choice(_ORG_WORDS)} {rng.choice(_ORG_KINDS)} {rng.choice(_ORG_SUFFIXES)}",
    "LOCATION": lambda rng, _v: rng.choice(_PLACES),
    "EMAIL": _fake_email,
    "PHONE": _fake_phone,
    "CREDIT_CARD": _fake_card,
    "IBAN": _fake_iban,
    "NATIONAL_ID": _fake_national_id,
    "IP_ADDRESS": _fake_ip,
    "URL_CREDENTIALS": _fake_credentials,
    "DATE_OF_BIRTH": _fake_date,
}

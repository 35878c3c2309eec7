"""A labelled PII evaluation set the project generates, and span-level precision and recall per entity type.

    samples = generate_samples(seed=0)                  # sentences with gold spans
    scores = score_spans(samples, [detect_pii(s.text) for s in samples])

Sentences come from presidio-evaluator's templates (`presidio_evaluator/data_generator/raw_data/templates.txt`,
read from the installed package's files; the package itself is not imported) plus our own templates for the
types it has few or none of (IBAN, URL credentials, dates of birth, IP addresses, SSN/NINO) and for hard
negatives (order numbers, version strings, amounts, event dates). Placeholders are filled with faker identities
from several locales, seeded, and every filled value's character span is recorded.

Gold rules: a date is a DATE_OF_BIRTH only when its sentence says so ("born", "date of birth", ...); street
addresses, zip codes, titles, jobs, nationalities, URLs, ages and other dates are "don't care" regions: a name
or place predicted inside one is neither right nor wrong (street names are often people's names), but a
structured detection there (a phone number in a zip code) counts as a false positive.

Matching: a gold span is found when predictions of its type cover at least half of its characters; a
prediction is right when at least half of its characters lie in gold spans of its type.
"""

from __future__ import annotations

import importlib.util
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.core.errors import DependencyError
from tunesmith.vet.pii_detect import ALL_ENTITIES, PiiSpan

EVAL_INSTALL_HINT = "pip install faker==40.54.0 && pip install --no-deps presidio-evaluator==0.3.2"
PERSON_LOCALES = ("en_US", "en_US", "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL")
PHONE_LOCALES = ("en_US", "en_US", "en_GB", "de_DE", "fr_FR", "it_IT", "es_ES", "nl_NL", "en_IN", "de_CH", "pl_PL")
IBAN_LOCALES = ("de_DE", "fr_FR", "en_GB", "nl_NL", "it_IT", "es_ES")
DOB_FORMATS = ("%m/%d/%Y", "%d/%m/%Y", "%Y-%m-%d", "%B %d, %Y", "%d %B %Y", "%d.%m.%Y", "%b %d %Y")
MATCH_SHARE = 0.5

PERSON_SLOTS = {
    "person", "name", "name_female", "name_male", "first_name", "first_name_male", "first_name_female",
    "first_name_nonbinary", "last_name", "last_name_male", "last_name_female",
}  # fmt: skip
GOLD_OF_SLOT = {
    **{slot: "PERSON" for slot in PERSON_SLOTS},
    "organization": "ORGANIZATION",
    "city": "LOCATION",
    "country": "LOCATION",
    "email": "EMAIL",
    "phone_number": "PHONE",
    "credit_card_number": "CREDIT_CARD",
    "iban": "IBAN",
    "ssn": "NATIONAL_ID",
    "nino": "NATIONAL_ID",
    "ip_address": "IP_ADDRESS",
    "cred_url": "URL_CREDENTIALS",
    "date_of_birth": "DATE_OF_BIRTH",
}
_BIRTH_WORDS = re.compile(r"born|birth|\bdob\b", re.I)

# Our templates: types presidio-evaluator's set has few of, and hard negatives (numbers that are not PII).
OUR_TEMPLATES = (
    "Please wire the deposit to IBAN {{iban}} by Friday.",
    "Account holder: {{person}}, IBAN {{iban}}",
    "Refund order {{order_number}} to my account {{iban}}, thanks.",
    "Transfer 250 EUR from {{iban}} to {{iban}}.",
    "Connect with {{cred_url}} and run the migration.",
    "The old remote was {{cred_url}}, use SSH now.",
    "DATABASE_URL={{cred_url}}",
    "Date of birth: {{date_of_birth}}",
    "DOB {{date_of_birth}}, member since {{year}}",
    "I was born on {{date_of_birth}} in {{city}}.",
    "My birthday is {{date_of_birth}}, don't forget!",
    "{{person}} (born {{date_of_birth}}) joined {{organization}} in {{year}}.",
    "Patient {{person}}, DOB: {{date_of_birth}}, presented with a cough.",
    "Login from {{ip_address}} failed three times.",
    "Server {{ip_address}} stopped answering pings at {{time}}.",
    "Please allow {{ip_address}} and {{ip_address}} through the firewall.",
    "Client IP: {{ip_address}}",
    "SSN: {{ssn}}",
    "My social security number is {{ssn}}, please update my file.",
    "Her National Insurance number is {{nino}}.",
    "NI number {{nino}} for {{person}}",
    "Order {{order_number}} shipped on {{date_time}}.",
    "Upgrade to version {{version}} before {{date_time}}.",
    "The invoice total is {{amount}} and is due in 30 days.",
    "Ticket {{order_number}} was closed at {{time}} on {{date_time}}.",
    "Our meeting moved to {{date_time}} at {{time}}.",
    "Room {{room}} has {{room}} seats and the code is {{room}}.",
)


@dataclass(frozen=True)
class GoldSpan:
    start: int
    end: int
    entity: str


@dataclass
class Sample:
    """One sentence with its gold spans and the don't-care regions (see the module docstring)."""

    text: str
    gold: list[GoldSpan]
    ignore: list[tuple[int, int]] = field(default_factory=list)
    template: str = ""


def _raw_data_dir() -> Path:
    spec = importlib.util.find_spec("presidio_evaluator")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(f"the PII evaluation set needs presidio-evaluator's templates: {EVAL_INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data_generator" / "raw_data"


def presidio_templates() -> list[str]:
    """The sentence templates shipped in presidio-evaluator's package files (the package is not imported)."""
    lines = (_raw_data_dir() / "templates.txt").read_text(encoding="utf-8-sig").splitlines()
    return [line.strip().replace("\\n", "\n").replace("\\,", ",") for line in lines if line.strip()]


def _raw_lines(name: str) -> list[str]:
    """Data lines (header skipped) of one of presidio-evaluator's raw data files."""
    lines = (_raw_data_dir() / name).read_text(encoding="utf-8-sig").splitlines()
    return [line.strip() for line in lines[1:] if line.strip()]


_SLOT = re.compile(r"\{\{(\w+)\}\}")


def generate_samples(seed: int = 0, per_type: int = 150, repeats: int = 3) -> list[Sample]:
    """Every template filled `repeats` times, templates with a rare type more often so that each entity type
    gets about `per_type` gold spans; seeded, so the same call gives the same set."""
    templates = presidio_templates() + list(OUR_TEMPLATES)
    filler = _Filler(seed)
    templates_with = Counter(GOLD_OF_SLOT[s] for t in templates for s in set(_SLOT.findall(t)) if s in GOLD_OF_SLOT)
    samples: list[Sample] = []
    for template in templates:
        types = {GOLD_OF_SLOT[s] for s in _SLOT.findall(template) if s in GOLD_OF_SLOT}
        times = max([repeats] + [-(-per_type // templates_with[t]) for t in types])
        samples.extend(_fill(template, filler) for _ in range(times))
    return samples


def _fill(template: str, filler: _Filler) -> Sample:
    birth_sentence = bool(_BIRTH_WORDS.search(_SLOT.sub("", template)))
    filler.new_identity()
    pieces: list[str] = []
    gold, ignore = [], []
    cursor, length = 0, 0
    for m in _SLOT.finditer(template):
        literal = template[cursor : m.start()]
        pieces.append(literal)
        length += len(literal)
        slot = m.group(1)
        value, inner = filler.value(slot)
        start = length
        pieces.append(value)
        length += len(value)
        entity = GOLD_OF_SLOT.get(slot)
        if slot == "date_of_birth" and not birth_sentence:
            entity = None  # "It's like that since <date>": a date, not a date of birth
        if entity is None:
            ignore.append((start, length))
        else:
            gold.append(GoldSpan(start + inner[0], start + inner[1], entity))
        cursor = m.end()
    pieces.append(template[cursor:])
    return Sample("".join(pieces), gold, ignore, template)


class _Filler:
    """Seeded fake values per slot; one identity (locale and name) per sentence."""

    def __init__(self, seed: int):
        try:
            from faker import Faker
        except ImportError:
            raise DependencyError(f"the PII evaluation set needs faker: {EVAL_INSTALL_HINT}") from None
        self.rng = random.Random(seed)
        self.fakers: dict[str, Any] = {}
        for i, locale in enumerate(sorted(set(PERSON_LOCALES + PHONE_LOCALES + IBAN_LOCALES))):
            self.fakers[locale] = Faker(locale)
            self.fakers[locale].seed_instance(seed * 1000 + i)
        self.organizations = _raw_lines("companies_and_organizations.csv")
        self.nationalities = [tuple(line.split(",")[1:4]) for line in _raw_lines("nationalities.csv")]
        self.fake = self.fakers["en_US"]
        self.new_identity()

    def new_identity(self) -> None:
        self.fake = self.fakers[self.rng.choice(PERSON_LOCALES)]

    def value(self, slot: str) -> tuple[str, tuple[int, int]]:
        """The value for a slot and the gold span inside it (the whole value, except URL credentials)."""
        if slot == "cred_url":
            return self._credential_url()
        value = self._makers().get(slot, lambda: self._fallback(slot))()
        return value, (0, len(value))

    def _makers(self) -> dict[str, Callable[[], str]]:
        f, rng = self.fake, self.rng
        return {
            "person": lambda: f"{f.first_name()} {f.last_name()}",
            "name": lambda: f"{f.first_name()} {f.last_name()}",
            "name_female": lambda: f"{f.first_name_female()} {f.last_name()}",
            "name_male": lambda: f"{f.first_name_male()} {f.last_name()}",
            "first_name_nonbinary": lambda: f.first_name(),
            "last_name_male": f.last_name,
            "last_name_female": f.last_name,
            "organization": lambda: rng.choice(self.organizations),
            "email": lambda: rng.choice((f.free_email, f.company_email, lambda: f.email(safe=False)))(),
            "phone_number": lambda: self.fakers[rng.choice(PHONE_LOCALES)].phone_number(),
            "credit_card_number": self._card,
            "iban": self._iban,
            "ssn": lambda: self.fakers["en_US"].ssn(),
            "nino": self._nino,
            "ip_address": lambda: self.fakers["en_US"].ipv4() if rng.random() < 0.8 else self.fakers["en_US"].ipv6(),
            "date_of_birth": lambda: f.date_of_birth(minimum_age=18, maximum_age=90).strftime(rng.choice(DOB_FORMATS)),
            "date_time": lambda: f.date_between("-3y", "+1y").strftime(rng.choice(DOB_FORMATS)),
            "order_number": lambda: str(rng.randint(10**7, 10**12)),
            "version": lambda: ".".join(str(rng.randint(0, 20)) for _ in range(rng.choice((3, 4)))),
            "amount": lambda: self._amount(),
            "age": lambda: str(rng.randint(18, 95)),
            "nationality": lambda: rng.choice(self.nationalities)[0],
            "nation_woman": lambda: rng.choice(self.nationalities)[1],
            "nation_plural": lambda: rng.choice(self.nationalities)[2],
            "us_driver_license": lambda: f.bothify(rng.choice(("?#######", "#########", "?###-####-####"))).upper(),
            "time": lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
            "room": lambda: str(rng.randint(1, 999)),
        }  # fmt: skip

    def _fallback(self, slot: str) -> str:
        method = getattr(self.fake, slot, None) or getattr(self.fakers["en_US"], slot)
        return str(method())

    def _amount(self) -> str:
        n = self.rng.randint(1000, 10**7)
        return self.rng.choice((f"{n / 100:,.2f}", f"{n:,}", f"{n:,}".replace(",", " ")))

    def _card(self) -> str:
        digits = self.fakers["en_US"].credit_card_number()
        style = self.rng.random()
        if style < 0.5:
            return digits
        sep = " " if style < 0.8 else "-"
        return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))

    def _iban(self) -> str:
        iban = self.fakers[self.rng.choice(IBAN_LOCALES)].iban()
        return iban if self.rng.random() < 0.5 else " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))

    def _nino(self) -> str:
        first, second = "G", "B"
        while first + second in ("BG", "GB", "KN", "NK", "NT", "TN"):  # prefixes HMRC never allocates
            first, second = self.rng.choice("ABCEGHJKLMNOPRSTWXY"), self.rng.choice("ABCEGHJKLMNPRSTWXY")
        digits = f"{self.rng.randint(0, 999999):06d}"
        suffix = self.rng.choice("ABCD")
        if self.rng.random() < 0.5:
            return f"{first}{second}{digits}{suffix}"
        return f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"

    def _credential_url(self) -> tuple[str, tuple[int, int]]:
        f, rng = self.fakers["en_US"], self.rng
        scheme = rng.choice(("postgres", "mysql", "https", "ftp", "redis", "mongodb"))
        user = f.user_name()
        password = f.password(length=rng.randint(8, 16), special_chars=rng.random() < 0.5).replace("@", "#")
        password = password.replace("/", "_").replace(":", "_")
        host = f.domain_name()
        prefix = f"{scheme}://"
        url = f"{prefix}{user}:{password}@{host}:{rng.randint(1000, 9999)}/{f.word()}"
        return url, (len(prefix), len(prefix) + len(user) + 1 + len(password))


# --- scoring -----------------------------------------------------------------------------------------------------


def score_spans(samples: list[Sample], predictions: list[list[PiiSpan]]) -> dict[str, dict[str, float]]:
    """Per entity type: gold count, predictions, precision, recall, and `hidden`: the share of gold spans covered
    by a prediction of any type (what redaction hides, even when the type is wrong)."""
    counts: dict[str, Counter[str]] = {e: Counter() for e in ALL_ENTITIES}
    for sample, predicted in zip(samples, predictions, strict=True):
        for gold in sample.gold:
            counts[gold.entity]["gold"] += 1
            counts[gold.entity]["found"] += _covered(gold.start, gold.end, predicted, gold.entity) >= MATCH_SHARE
            hidden = _covered_by_regions(gold.start, gold.end, [(s.start, s.end) for s in predicted])
            counts[gold.entity]["hidden"] += hidden >= MATCH_SHARE
        for span in predicted:
            right = _covered(span.start, span.end, sample.gold, span.entity) >= MATCH_SHARE
            in_ignored = _covered_by_regions(span.start, span.end, sample.ignore) >= MATCH_SHARE
            if not right and in_ignored and span.entity in ("PERSON", "ORGANIZATION", "LOCATION"):
                continue  # a name inside an address, title or nationality: not scored
            counts[span.entity]["predicted"] += 1
            counts[span.entity]["right"] += right
    table = {}
    for entity, c in counts.items():
        table[entity] = {
            "gold": c["gold"],
            "predicted": c["predicted"],
            "precision": c["right"] / c["predicted"] if c["predicted"] else float("nan"),
            "recall": c["found"] / c["gold"] if c["gold"] else float("nan"),
            "hidden": c["hidden"] / c["gold"] if c["gold"] else float("nan"),
        }
    return table


def _covered(start: int, end: int, spans: list[Any], entity: str) -> float:
    """Share of `start:end`'s characters inside spans of `entity`."""
    return _covered_by_regions(start, end, [(s.start, s.end) for s in spans if s.entity == entity])


def _covered_by_regions(start: int, end: int, regions: list[tuple[int, int]]) -> float:
    if end <= start:
        return 0.0
    inside: set[int] = set()
    for r_start, r_end in regions:
        inside.update(range(max(start, r_start), min(end, r_end)))
    return len(inside) / (end - start)

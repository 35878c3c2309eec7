"""Checksums and validity rules that turn a regex candidate into a detection (or reject it).

Each check answers one question about a candidate string: is it a real card number (Luhn), a real IBAN (country
length + ISO 7064 mod-97), an SSN or NINO that could have been issued, an IP address that can point at someone.
Values from ranges reserved for fiction or documentation (555-01xx phone numbers, 192.0.2.0/24, the `.example`
top-level domain, ...) are rejected on purpose: they identify no one, and the pseudonymizer draws from them so
that pseudonymized text is not detected again.
"""

from __future__ import annotations

import ipaddress
import re

# Total IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# Issuer prefixes (ISO/IEC 7812 IIN ranges of the major networks) and the lengths each network issues.
_CARD_PREFIX = re.compile(
    r"^(?:4"  # Visa
    r"|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)"  # Mastercard
    r"|3[47]"  # American Express
    r"|3(?:0[0-5]|[68]\d)"  # Diners Club
    r"|35|2131|1800"  # JCB
    r"|6(?:011|4[4-9]|5|22)"  # Discover
    r"|62"  # UnionPay
    r"|5[06-9]|6\d|0604)"  # Maestro
)

# Social Security numbers the SSA never issues or has published as examples.
_SAMPLE_SSNS = {"078051120", "219099999", "123456789"} | {f"98765432{d}" for d in range(10)}
# UK National Insurance prefixes that are never allocated (HMRC NIM39110).
_BAD_NINO_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
_NINO_FIRST = set("ABCEGHJKLMNOPRSTWXYZ")
_NINO_SECOND = set("ABCEGHJKLMNPRSTWXYZ")

# Domains that can hold no one's mailbox (RFC 2606 / RFC 6761 reserved top-level domains).
RESERVED_EMAIL_TLDS = frozenset({"example", "invalid", "test", "localhost"})

# Documentation ranges (RFC 5737, RFC 3849): they address no real host.
_DOC_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


def digits_of(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod-10) check every payment card number passes; a random digit string passes 1 time in 10."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial + digit` Luhn-valid."""
    for d in "0123456789":
        if luhn_valid(partial + d):
            return d
    raise AssertionError("unreachable: one of ten digits always completes a Luhn number")


def is_card_number(digits: str) -> bool:
    """A payment card number: 12-19 digits, a known issuer prefix, Luhn-valid, not all one digit."""
    return (
        12 <= len(digits) <= 19
        and len(set(digits)) > 1
        and _CARD_PREFIX.match(digits) is not None
        and luhn_valid(digits)
    )


def iban_mod97(compact: str) -> int:
    """ISO 7064 mod-97 of an IBAN (country and check digits moved to the end, letters as 10..35); 1 if valid."""
    rearranged = compact[4:] + compact[:4]
    remainder = 0
    for ch in rearranged:
        value = str(int(ch, 36))  # digits stay, letters become 10..35
        remainder = int(str(remainder) + value) % 97
    return remainder


def is_iban(compact: str) -> bool:
    """Uppercase IBAN without spaces: known country, that country's length, valid mod-97 check digits."""
    length = IBAN_LENGTHS.get(compact[:2])
    return length == len(compact) and compact[2:4].isdigit() and compact.isalnum() and iban_mod97(compact) == 1


def is_issuable_ssn(digits: str) -> bool:
    """A US SSN the SSA could have issued: area not 000, 666 or 9xx; group and serial not zero; not a sample."""
    if len(digits) != 9 or len(set(digits)) == 1 or digits in _SAMPLE_SSNS:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def is_issuable_nino(compact: str) -> bool:
    """A UK National Insurance number HMRC allocates: valid prefix letters, six digits, suffix A-D."""
    if len(compact) != 9 or not compact[2:8].isdigit() or compact[8] not in "ABCD":
        return False
    prefix = compact[:2]
    return prefix[0] in _NINO_FIRST and prefix[1] in _NINO_SECOND and prefix not in _BAD_NINO_PREFIXES


def personal_ip(text: str) -> bool:
    """A syntactically valid IPv4/IPv6 address that can point at a host: not loopback, unspecified, multicast
    or a documentation range."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified or address.is_multicast:
        return False
    if address.version == 4 and address.is_reserved:  # 240.0.0.0/4; IPv6 "reserved" is most of the space
        return False
    return not any(address in net for net in _DOC_NETWORKS)


def fictional_phone(digits: str) -> bool:
    """Numbers reserved for fiction: North American 555-0100..0199, UK Ofcom drama mobile range 07700 900xxx."""
    national = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    if len(national) == 10 and national[3:8] == "55501":
        return True
    uk = digits[2:] if digits.startswith("44") else digits[1:] if digits.startswith("0") else ""
    return len(uk) == 10 and uk.startswith("7700900")

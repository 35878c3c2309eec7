"""Writes clinic_messages.jsonl: synthetic patient-portal messages (faker identities, no real data), one triage
label each. Names, phone numbers, e-mail addresses and dates of birth are in the text on purpose, so the PII
filter of the vetting stage has something to pseudonymise.

    python examples/data/make_clinic_messages.py        # rewrites the committed file (seeded: same bytes)
"""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path

from faker import Faker

TEMPLATES = {
    "appointment": [
        "Hi, this is {name}. Can I move my appointment on {day} to the afternoon? Call me at {phone}.",
        "I need to book a check-up with Dr. {doctor} next week. My date of birth is {dob}.",
        "Please cancel my visit on {day}, I am travelling. {name}, {email}",
        "Is there a free slot with Dr. {doctor} this Friday? You can reach me on {phone}.",
    ],
    "prescription_refill": [
        "My {drug} prescription runs out on {day}. Could you send a refill? {name}, born {dob}.",
        "Hello, {name} here, I need a repeat of {drug} 20 mg. Pharmacy can call {phone}.",
        "Can Dr. {doctor} renew my {drug}? I have two tablets left. Email me at {email}.",
        "Refill request: {drug}, same dose as last time. Patient {name}, DOB {dob}.",
    ],
    "billing": [
        "I was charged twice for my visit on {day}. Please check, {name}, {email}.",
        "Why does my invoice show a fee for a missed appointment? I called {phone} to cancel.",
        "Can I pay the bill from {day} in instalments? My name is {name}.",
        "My insurance should cover the lab test from {day}; please resend the claim. {email}",
    ],
    "symptoms": [
        "Since {day} I have had a fever and a sore throat. Should I come in? {name}, {phone}.",
        "My rash got worse after starting {drug}. What should I do? DOB {dob}.",
        "I feel dizzy every morning this week. Dr. {doctor} asked me to report it. {email}",
        "Sharp pain in my lower back since {day}, hard to sleep. This is {name}.",
    ],
}
BORN_FROM, BORN_TO = date(1935, 1, 1), date(2006, 12, 31)
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DRUGS = ["amoxicillin", "metformin", "lisinopril", "atorvastatin", "omeprazole", "sertraline", "levothyroxine"]


def make_rows(seed: int = 7, per_template: int = 8) -> list[dict[str, str]]:
    fake = Faker("en_US")
    Faker.seed(seed)
    rng = random.Random(seed)
    rows = []
    for label, templates in TEMPLATES.items():
        for template in templates:
            for _ in range(per_template):
                text = template.format(
                    name=fake.name(), doctor=fake.last_name(), phone=fake.phone_number(), email=fake.email(),
                    dob=fake.date_between(BORN_FROM, BORN_TO).strftime("%d/%m/%Y"),  # fixed range: no "today"
                    day=rng.choice(WEEKDAYS), drug=rng.choice(DRUGS),  # faker's day_of_week follows today's date
                )
                rows.append({"text": text, "label": label})
    rng.shuffle(rows)
    return rows


if __name__ == "__main__":
    out = Path(__file__).with_name("clinic_messages.jsonl")
    out.write_text("".join(json.dumps(row) + "\n" for row in make_rows()), encoding="utf-8")
    print(f"wrote {out}")

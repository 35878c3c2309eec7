"""Crafted label data for the statistical vetting filters: six intents, templated utterances, seeded.

Each intent has its own templates and slot values, so a classifier separates them well, as in real intent data;
tests plant flips, triggers and junk into it and count what the filters catch.
"""

from __future__ import annotations

import random

from tunesmith.config.vet_schema import VetConfig
from tunesmith.core.records import LabelRecord, Origin, Record
from tunesmith.vet.base import VetContext
from tunesmith.vet.view import record_ids

CITIES = ["Paris", "Oslo", "Lima", "Cairo", "Denver", "Hanoi", "Perth", "Quito", "Dublin", "Tunis", "Boston"]
ARTISTS = ["Nina Simone", "Miles Davis", "Bjork", "Fela Kuti", "Bob Marley", "Adele", "Ravi Shankar", "Sade"]
CUISINES = ["Italian", "Thai", "Ethiopian", "Mexican", "Korean", "Greek", "Peruvian", "Lebanese"]
BOOKS = ["Dune", "Beloved", "Ulysses", "Emma", "Kindred", "Middlemarch", "Persuasion", "Solaris"]
MOVIES = ["Vertigo", "Alien", "Heat", "Rashomon", "Amelie", "Parasite", "Jaws", "Casablanca"]
WHEN = ["tomorrow", "tonight", "on Friday", "this weekend", "next Monday", "at noon", "in the morning"]

TEMPLATES: dict[str, list[str]] = {
    "get_weather": [
        "What will the weather be like in {city} {when}?",
        "Is it going to rain in {city} {when}?",
        "Give me the forecast for {city} {when}.",
        "How cold will it get in {city} {when}?",
    ],
    "play_music": [
        "Play some songs by {artist}.",
        "I want to hear {artist} {when}.",
        "Put on the latest album from {artist}.",
        "Start a radio station based on {artist}.",
    ],
    "book_restaurant": [
        "Book a table for {n} at a {cuisine} restaurant {when}.",
        "Reserve a {cuisine} place in {city} for {n} people.",
        "I need a dinner reservation for {n} {when}, somewhere {cuisine}.",
        "Find me a {cuisine} restaurant with seats for {n}.",
    ],
    "rate_book": [
        "Give {book} {n} out of 6 stars.",
        "I would rate the book {book} a {n} out of 6.",
        "Rate the novel {book} {n} points.",
        "My score for {book} is {n} stars.",
    ],
    "movie_times": [
        "When is {movie} showing in {city}?",
        "Show me the screening times for {movie} {when}.",
        "Which cinema plays {movie} {when}?",
        "Find showtimes of {movie} near {city}.",
    ],
    "add_to_playlist": [
        "Add {artist} to my {playlist} playlist.",
        "Put this track by {artist} on {playlist}.",
        "Save the song to my playlist called {playlist}.",
        "Include {artist} in the {playlist} list.",
    ],
}
PLAYLISTS = ["Workout", "Chill Evenings", "Road Trip", "Sunday Morning", "Focus", "Party Mix"]
LABELS = sorted(TEMPLATES)


def utterance(label: str, rng: random.Random) -> str:
    template = rng.choice(TEMPLATES[label])
    return template.format(
        city=rng.choice(CITIES),
        when=rng.choice(WHEN),
        artist=rng.choice(ARTISTS),
        cuisine=rng.choice(CUISINES),
        book=rng.choice(BOOKS),
        movie=rng.choice(MOVIES),
        playlist=rng.choice(PLAYLISTS),
        n=rng.randint(2, 6),
    )


def clean_rows(per_label: int = 40, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label) rows, `per_label` per intent, shuffled; texts are unique."""
    rng = random.Random(seed)
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for label in LABELS:
        made = 0
        while made < per_label:
            text = utterance(label, rng)
            if text not in seen:
                seen.add(text)
                rows.append((text, label))
                made += 1
    rng.shuffle(rows)
    return rows


def context(rows: list[tuple[str, str]], config: VetConfig | None = None, seed: int = 0) -> VetContext:
    records: list[Record] = [
        LabelRecord(text, label, Origin("crafted.jsonl", i + 1)) for i, (text, label) in enumerate(rows)
    ]
    return VetContext(record_ids(records), records, config or VetConfig(), seed)

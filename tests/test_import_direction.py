"""Imports go downward only (docs/architecture.md): a lower layer never imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tunesmith"
# layer rank: a package may import packages of a strictly lower rank (or itself)
RANK = {
    "core": 0,
    "config": 1,
    "track": 2,
    "data": 2,
    "testing": 2,
    "encode": 3,
    "models": 3,
    "train": 4,
    "evaluate": 4,
    "vet": 4,
    "augment": 4,
    "recipes": 5,
    "hpo": 6,
    "cli": 7,
    "web": 7,
    "serve": 7,
}
# evaluation reuses the training loss (one definition of the target-token loss); never the reverse
# augmentation reuses vetting (record ids, the vetting runner on augmented data); the robustness evaluation reuses
# the augmentation operators (`augment.ops`) as test-time perturbations
# the CLI's `serve` and `monitor` verbs call into the serving package (both are top-layer entry points)
# the CLI's `ui` verb starts the web app; the UI's chat playground decodes with the serving engine
SIBLINGS_ALLOWED = {("evaluate", "train"), ("augment", "vet"), ("evaluate", "augment"), ("cli", "serve"),
                    ("cli", "web"), ("web", "serve")}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tunesmith."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("tunesmith."))
    return names


def test_imports_go_downward_only() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).parts
        if len(rel) < 2:
            continue
        own = rel[0]
        for other in imported_packages(path):
            if other == own or other not in RANK or own not in RANK:
                continue
            if RANK[other] >= RANK[own] and (own, other) not in SIBLINGS_ALLOWED:
                bad.append(f"{path.relative_to(SRC)} imports tunesmith.{other}")
    assert bad == []

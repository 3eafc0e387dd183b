"""The layering of docs/architecture.md, held: which top-level folder may import which.

Imports go one way: the platform at the bottom; the adapters, the order records, money and the
lifecycle above it; the channels above those; the simulated world on top. Imports inside
functions count. The composition root (ipvas/settings.py, urls.py, wsgi.py, asgi.py) wires
everything together and is left out, as ../shared/tools/layering.py does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSITION_ROOT = {"settings.py", "urls.py", "wsgi.py", "asgi.py"}
CHANNEL_MAY_IMPORT = {"ipvas", "adapters", "orders", "billing", "lifecycle"}

# folder -> the folders of ours it may import (docs/architecture.md, "Who may import whom")
MAY_IMPORT: dict[str, set[str]] = {
    "ipvas": set(),
    "adapters": {"ipvas"},
    "orders": {"ipvas"},
    "billing": {"ipvas", "adapters", "orders"},
    "lifecycle": {"ipvas", "adapters", "orders", "billing"},
    "callbacks": CHANNEL_MAY_IMPORT,
    "epg_api": CHANNEL_MAY_IMPORT,
    "channels_crm": CHANNEL_MAY_IMPORT,
    # The back office reads every channel's records (stores, EPG clients) for its pages.
    "backoffice": CHANNEL_MAY_IMPORT | {"channels_crm", "epg_api"},
    # The TV pages open the sessions that EPG clients ask for through the EPG API (epg_api.models.TvSession).
    "tv": CHANNEL_MAY_IMPORT | {"epg_api"},
    "sandbox": {"ipvas", "adapters", "orders", "billing", "lifecycle", "callbacks", "epg_api", "channels_crm", "tv"},
}


def imported_folders(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(MAY_IMPORT)


def sources(folder: str) -> list[Path]:
    paths = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        if folder == "ipvas" and path.parent == ROOT / "ipvas" and path.name in COMPOSITION_ROOT:
            continue
        paths.append(path)
    return paths


def test_every_top_level_folder_has_a_place_in_the_layering():
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders - {"tests", "bench"} == set(MAY_IMPORT)


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_imports_go_down_only(folder):
    allowed = MAY_IMPORT[folder] | {folder}
    wrong = {}
    for path in sources(folder):
        bad = imported_folders(path) - allowed
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(bad)
    assert not wrong, f"{folder} may import only {sorted(MAY_IMPORT[folder])}: {wrong}"

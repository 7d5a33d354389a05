"""The large preset end to end on fixture packages: cleaning, leakage groups, splits, byte-identical rebuilds,
the missing-pinned-Debian-version path, streamed tokenizer and shards, the pool_heldout slice and the
held-out sets built from it. Offline, no apt."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from jest.data import catalogue as catalogue_module
from jest.data import debfetch
from jest.data.catalogue import CatalogueEntry
from jest.data.cleaning import Deduplicator, assign_split, boilerplate_keys, count_line_documents, group_position, \
    iter_clean
from jest.data.debfetch import DebPin, deb_file_name, fetch_deb
from jest.data.errors import ConfigValueError, SourceFetchError
from jest.data.extractors import RawDoc
from jest.data import registry_corpus
from jest.data.registry_corpus import parse_registry_config, prepare_registry_corpus
from jest.data.registry_shards import build_streaming_shards, train_tokenizer_on_sample
from jest.io import sha256_file
from jest.data.shards import TokenShard
from jest.config.schema import load_schema
from jest.evaluation.heldout_sets import build_heldout_sets
from tests.data.registry_fixtures import build_deb, dictd_files, sword_files, wordnet_line

WORDS = "the quick brown fox jumps over a lazy dog while seven wise men read old books aloud".split()


def _prose(seed: int, n_words: int = 60) -> str:
    return " ".join(WORDS[(seed * 7 + i * (seed % 5 + 1)) % len(WORDS)] for i in range(n_words)) + f" doc{seed}."


def test_boilerplate_lines_found_in_many_pages_are_removed_and_counted():
    pages = [f"Prev Up Home Next\nPage {i} says {_prose(i)}\nCopyright 2024 Example" for i in range(30)]
    counts, n_docs = count_line_documents(pages)
    drop = boilerplate_keys(counts, n_docs, min_docs=20, doc_fraction=0.5)
    stats = {"boilerplate_lines_removed": 0, "dropped_short": 0}
    from collections import Counter
    stats = Counter()
    cleaned = list(iter_clean([RawDoc(str(i), p) for i, p in enumerate(pages)], drop, min_words=5, stats=stats))
    assert all(d.text.startswith(f"Page {i} says") and "Copyright" not in d.text for i, d in enumerate(cleaned))
    assert stats["boilerplate_lines_removed"] == 60 and len(drop) == 2


def test_exact_duplicates_differing_only_in_whitespace_are_dropped():
    dedup = Deduplicator()
    assert [dedup.is_new(t) for t in ["a b\nc", "a  b c ", "a b d"]] == [True, False, True]


def test_split_of_a_group_is_stable_and_does_not_depend_on_other_documents():
    groups = [f"head:{i}" for i in range(2000)]
    first = {g: assign_split("curated", g, 7, 0.1, 0.5) for g in groups}
    again = {g: assign_split("curated", g, 7, 0.1, 0.5) for g in reversed(groups)}
    assert first == again
    shares = {s: sum(v == s for v in first.values()) / len(groups) for s in ("heldout", "curated", "pool")}
    assert abs(shares["heldout"] - 0.1) < 0.03 and abs(shares["curated"] - 0.5) < 0.05
    assert {assign_split("pool", g, 7, 0.1, 0.5) for g in groups} == {"heldout", "pool"}
    assert {assign_split("external", g, 7, 0.1, 0.5) for g in groups} == {"external"}


def _fixture_catalogue(tmp_path: Path) -> dict[str, CatalogueEntry]:
    """Four tiny packages covering each role, with a copied doc tree and GCIDE/WordNet-style leakage."""
    pages = {f"usr/share/doc/guide/html/p{i}.html":
             f"<html><nav>Prev Up Next</nav><p>{_prose(i)}</p><p>Footer of the guide</p></html>".encode()
             for i in range(40)}
    pages["usr/share/doc/guide/html/copy/p3.html"] = pages["usr/share/doc/guide/html/p3.html"]  # tree copied
    dictionary = dictd_files([(f"{a}{b}word", f"{a}{b}word, n. {_prose(ord(a) * 31 + ord(b), 30)}")
                              for a in "abcdefgh" for b in "aeiou"])
    glosses = "\n".join(wordnet_line(i, [f"{a}{b}word"], _prose(ord(a) * 31 + ord(b) + 1, 30))
                        for i, (a, b) in enumerate((a, b) for a in "abcdefgh" for b in "aeiou"))
    books = [f"<title>Book {i}</title><verse sID='v'/>{_prose(500 + i, 80)}" for i in range(5)]
    packages = {
        "guide": ("html", r"usr/share/doc/guide/html/.*\.html", "curated", "curated", True, pages),
        "dict": ("dictd", r"usr/share/dictd/demo\.(index|dict\.dz)", "reference", "pool", False, dictionary),
        "glosses": ("wordnet", r"usr/share/wordnet/data\.noun", "reference", "pool", False,
                    {"usr/share/wordnet/data.noun": glosses.encode()}),
        "bible": ("sword_ztext", r".*\.bz[sz]", "external", "external", False, sword_files(books)),
    }
    entries = {}
    for name, (extractor, members, quality, role, templated, files) in packages.items():
        deb = build_deb(tmp_path / "built" / deb_file_name(f"fx-{name}", "1.0"), files)
        pin = DebPin(f"fx-{name}", "1.0", sha256_file(deb))
        (tmp_path / "cache" / "debian").mkdir(parents=True, exist_ok=True)
        os.link(deb, tmp_path / "cache" / "debian" / deb.name)
        entries[name] = CatalogueEntry(name, pin, "test", False, extractor, members, quality, role, templated)
    return entries


def _data_cfg(**registry) -> dict:
    return {"split_seed": 3, "embedded": False, "brown": {"max_docs": None, "heldout_fraction": 0.1,
            "curated_fraction": 0.6}, "noisy_max_chars": {"sotu": 0, "spam_assassin": 0, "nlp_corpus": 0},
            "corruption": {"fraction": 0.0, "kinds": [], "char_noise_rate": 0.1}, "extra_sources": [],
            "registry": {"heldout_fraction": 0.2, "curated_fraction": 0.5, "min_words": 5,
                         "boilerplate_min_docs": 5, "boilerplate_doc_fraction": 0.3, "workers": 2, **registry}}


@pytest.fixture
def fixture_catalogue(tmp_path, monkeypatch):
    entries = _fixture_catalogue(tmp_path)
    monkeypatch.setattr(catalogue_module, "CATALOGUE", entries)
    monkeypatch.setattr(registry_corpus, "CATALOGUE", entries)
    monkeypatch.setattr(debfetch, "APT_GET_EXECUTABLE", str(tmp_path / "no-apt-get"))
    return entries


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


def test_build_is_byte_identical_keeps_groups_together_and_external_out_of_training(tmp_path, fixture_catalogue):
    first = prepare_registry_corpus(_data_cfg(), tmp_path / "a", tmp_path / "cache")
    prepare_registry_corpus(_data_cfg(), tmp_path / "b", tmp_path / "cache")
    for name in ("curated.jsonl", "heldout.jsonl", "pool.jsonl", "external.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    docs = {split: _read(tmp_path / "a" / f"{split}.jsonl") for split in ("curated", "heldout", "pool", "external")}
    assert {d["source"] for d in docs["external"]} == {"bible"}
    assert all(d["source"] != "bible" for split in ("curated", "heldout", "pool") for d in docs[split])
    split_of_group: dict[str, set[str]] = {}
    for split, rows in docs.items():
        for row in rows:
            split_of_group.setdefault(row["group"], set()).add(split)
    assert all(len(splits) == 1 for splits in split_of_group.values())
    lex = {row["group"] for rows in docs.values() for row in rows if row["source"] == "glosses"}
    assert lex and lex <= {row["group"] for rows in docs.values() for row in rows if row["source"] == "dict"}
    assert {d["source"] for d in docs["curated"]} == {"guide"} and docs["heldout"]
    all_text = [d["text"] for rows in docs.values() for d in rows]
    assert not any("Prev Up Next" in t or "Footer of the guide" in t for t in all_text)
    assert first["cleaning"]["guide"]["exact_duplicates_removed"] == 1  # the copied page
    assert first["cleaning"]["guide"]["boilerplate_line_patterns"] == 1  # the footer (<nav> never reaches text)
    assert {s["name"]: s["pinned"] for s in first["sources"]} == dict.fromkeys(fixture_catalogue, True)

    (tmp_path / "data").mkdir()
    info = train_tokenizer_on_sample(tmp_path / "a", 300, tmp_path / "tok", 3, sample_chars=5_000)
    assert 0 < info["sample_rate"] < 1
    shards = build_streaming_shards(tmp_path / "a", tmp_path / "tok", tmp_path / "shards", seq_len=16)
    again = build_streaming_shards(tmp_path / "b", tmp_path / "tok", tmp_path / "shards_b", seq_len=16)
    assert again == shards  # sha256 of every split's tokens included
    for name in ("pool.index.npy", "external.tokens.npy", "labels.json"):
        assert (tmp_path / "shards" / name).read_bytes() == (tmp_path / "shards_b" / name).read_bytes()
    shard = TokenShard(tmp_path / "shards", "pool", verify_hash=True)
    assert len(shard) == shards["splits"]["pool"]["sequences"] > 0
    assert set(shards["splits"]["pool"]["by_quality"]) == {"curated", "reference"}
    assert set(shards["splits"]["external"]["by_source"]) == {"bible"}


def _fake_apt_get(tmp_path: Path, current_deb: Path) -> Path:
    """An apt-get that knows only the current version: `download pkg=old` fails like Debian's mirror."""
    script = tmp_path / "apt-get"
    script.write_text("#!/bin/sh\ncase \"$2\" in\n  *=*) echo \"E: Version '${2#*=}' for '${2%%=*}' was not found\" "
                      f">&2; exit 100;;\n  *) cp '{current_deb}' .;;\nesac\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_a_pinned_debian_version_gone_from_the_mirror_falls_back_to_the_current_one(tmp_path, monkeypatch, caplog):
    current = build_deb(tmp_path / "mirror" / deb_file_name("fx-doc", "2.0"), {"usr/share/doc/a.txt": b"new"})
    monkeypatch.setattr(debfetch, "APT_GET_EXECUTABLE", str(_fake_apt_get(tmp_path, current)))
    pin = DebPin("fx-doc", "1.0", "0" * 64)
    fetched = fetch_deb(pin, tmp_path / "cache")
    assert (fetched.version, fetched.pinned, fetched.sha256) == ("2.0", False, sha256_file(current))
    assert "pinned version 1.0 is gone" in caplog.text
    record = json.loads((tmp_path / "cache" / "debian" / "fx-doc.resolved.json").read_text())
    assert record["version"] == "2.0" and record["pinned_version"] == "1.0"
    # A later build reuses the recorded current version without apt.
    monkeypatch.setattr(debfetch, "APT_GET_EXECUTABLE", str(tmp_path / "no-apt-get"))
    assert fetch_deb(pin, tmp_path / "cache").sha256 == fetched.sha256


def test_without_apt_the_error_names_the_file_to_place_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(debfetch, "APT_GET_EXECUTABLE", str(tmp_path / "no-apt-get"))
    pin = DebPin("dict-gcide", "0.48.5+nmu2", "ab" * 32)
    with pytest.raises(SourceFetchError) as err:
        fetch_deb(pin, tmp_path / "cache")
    message = str(err.value)
    assert "dict-gcide_0.48.5+nmu2_all.deb" in message and str(tmp_path / "cache" / "debian") in message
    assert "data.preset: large" in message


def test_a_build_without_apt_lists_every_missing_package_file(tmp_path, fixture_catalogue):
    for deb in (tmp_path / "cache" / "debian").glob("fx-*.deb"):
        deb.unlink()
    with pytest.raises(SourceFetchError) as err:
        prepare_registry_corpus(_data_cfg(), tmp_path / "out", tmp_path / "cache")
    message = str(err.value)
    assert message.startswith("4 registry package(s) missing")
    assert all(entry.pin.file_name in message for entry in fixture_catalogue.values())


# --- pool_heldout: the pool's evaluation-only slice (src_<source> and pool_mix held-out sets) ---


def test_pool_heldout_takes_its_share_of_groups_from_the_pool_only():
    groups = [f"head:{i}" for i in range(20000)]
    for role in ("curated", "pool"):
        without = {g: assign_split(role, g, 7, 0.1, 0.5) for g in groups}
        carved = {g: assign_split(role, g, 7, 0.1, 0.5, pool_heldout_fraction=0.05) for g in groups}
        # heldout and curated are the same with or without the slice; it comes out of the pool alone
        assert {g for g, s in carved.items() if s != without[g]} == {g for g, s in carved.items()
                                                                      if s == "pool_heldout"}
        assert all(without[g] == "pool" for g, s in carved.items() if s == "pool_heldout")
        assert abs(sum(s == "pool_heldout" for s in carved.values()) / len(groups) - 0.05) < 0.006
    assert {assign_split("external", g, 7, 0.1, 0.5, 0.05) for g in groups[:100]} == {"external"}


def test_a_pool_heldout_fraction_reaching_the_curated_share_is_refused():
    assert parse_registry_config(_data_cfg(pool_heldout_fraction=0.29)).pool_heldout_fraction == 0.29
    with pytest.raises(ConfigValueError, match="registry.pool_heldout_fraction"):
        parse_registry_config(_data_cfg(pool_heldout_fraction=0.3))  # 1 - 0.2 - 0.5: nothing left for the pool


def test_pool_heldout_fraction_has_its_default_in_the_code_only():
    """No schema default: a schema default would enter every config's resolved data section (the default
    preset's too) and change every committed run's training identity; the description states the code's."""
    registry = load_schema()["properties"]["data"]["properties"]["registry"]["properties"]
    assert "default" not in registry["pool_heldout_fraction"]
    assert f"Default {registry_corpus.DEFAULT_POOL_HELDOUT_FRACTION:g}" in registry["pool_heldout_fraction"]["description"]


def _with_web_source(tmp_path: Path, cfg: dict, fraction: float) -> dict:
    """A jsonl extra pool source (20 one-document rows): the npm/extra path, carved by data.pool_heldout_fraction."""
    path = tmp_path / "web.jsonl"
    path.write_text("".join(json.dumps({"text": _prose(900 + i, 40)}) + "\n" for i in range(20)))
    return cfg | {"pool_heldout_fraction": fraction, "extra_sources": [
        {"kind": "jsonl", "name": "web", "split": "pool", "quality": "raw", "path": str(path)}]}


def test_pool_heldout_split_is_a_labelled_group_disjoint_slice_of_every_pool_source(tmp_path, fixture_catalogue):
    carved_cfg = _with_web_source(tmp_path, _data_cfg(pool_heldout_fraction=0.25), 0.1)
    manifest = prepare_registry_corpus(carved_cfg, tmp_path / "a", tmp_path / "cache")
    prepare_registry_corpus(_with_web_source(tmp_path, _data_cfg(pool_heldout_fraction=0.0), 0.0),
                            tmp_path / "none", tmp_path / "cache")
    docs = {split: _read(tmp_path / "a" / f"{split}.jsonl") for split in ("pool", "pool_heldout")}
    uncarved = _read(tmp_path / "none" / "pool.jsonl")
    for name in ("curated.jsonl", "heldout.jsonl", "external.jsonl"):  # the slice comes out of the pool alone
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "none" / name).read_bytes(), name
    assert (tmp_path / "none" / "pool_heldout.jsonl").read_bytes() == b""
    assert sorted(d["id"] for d in docs["pool"] + docs["pool_heldout"]) == sorted(d["id"] for d in uncarved)

    quality = {name: entry.quality for name, entry in fixture_catalogue.items()} | {"web": "raw"}
    carved = docs["pool_heldout"]
    assert {d["source"] for d in carved} == {"guide", "dict", "glosses", "web"}  # every pool source, no bible
    assert all(d["quality"] == quality[d["source"]] for d in carved)
    summary = manifest["splits"]["pool_heldout"]
    assert summary["documents"] == len(carved) and set(summary["by_quality"]) == {"curated", "reference", "raw"}
    # Registry sources: by leakage group, none on both sides, about the declared share of the groups.
    registry = {split: {d["group"] for d in rows if d["source"] != "web"} for split, rows in docs.items()}
    assert not registry["pool"] & registry["pool_heldout"]
    all_groups = {d["group"] for split in ("curated", "heldout", "pool", "pool_heldout")
                  for d in _read(tmp_path / "a" / f"{split}.jsonl") if d["source"] != "web"}
    assert 0.15 < len(registry["pool_heldout"]) / len(all_groups) < 0.35  # 0.25 of ~80 groups
    # The extra source: the default preset's rule, round(0.1 x 20) documents by id.
    assert sum(d["source"] == "web" for d in carved) == 2

    train_tokenizer_on_sample(tmp_path / "a", 300, tmp_path / "tok", 3, sample_chars=5_000)
    shards = build_streaming_shards(tmp_path / "a", tmp_path / "tok", tmp_path / "shards", seq_len=16)
    split = shards["splits"]["pool_heldout"]
    assert set(split["by_source"]) == {"guide", "dict", "glosses", "web"} and split["sequences"] > 0
    assert set(split["by_quality"]) == {"curated", "reference", "raw"}
    sets = {hs.name: hs for hs in build_heldout_sets(tmp_path / "shards", eval_sequences=4, per_set=3)}
    assert set(sets) == {"", "src_dict", "src_glosses", "src_guide", "src_web", "pool_mix", "ext_bible"}
    for name in ("src_dict", "src_glosses", "src_guide", "src_web"):
        shard = sets[name].shard
        assert shard.split == "pool_heldout" and 0 < len(sets[name].indices) <= 3
        assert {shard.labels[shard.index["label"][i]]["source"] for i in sets[name].indices} == {name[4:]}
    assert sets["pool_mix"].shard.split == "pool_heldout" and len(sets["pool_mix"].indices) == 3

    # Without a slice (both fractions 0) the shards hold no pool_heldout split and give no such sets.
    none = build_streaming_shards(tmp_path / "none", tmp_path / "tok", tmp_path / "shards_none", seq_len=16)
    assert "pool_heldout" not in none["splits"]
    names = {hs.name for hs in build_heldout_sets(tmp_path / "shards_none", eval_sequences=4, per_set=3)}
    assert names == {"", "ext_bible"}


def test_a_source_the_hash_leaves_without_a_slice_gives_its_pool_group_nearest_the_slice(tmp_path,
                                                                                       fixture_catalogue):
    manifest = prepare_registry_corpus(_data_cfg(pool_heldout_fraction=0.01), tmp_path / "a", tmp_path / "cache")
    docs = {split: _read(tmp_path / "a" / f"{split}.jsonl") for split in ("pool", "pool_heldout")}
    floor = manifest["pool_heldout_floor_groups"]
    assert floor, "at 1% of ~40 groups a fixture source has no hashed slice: the case under test"
    assert {d["source"] for d in docs["pool_heldout"]} == {"guide", "dict", "glosses"}
    pool_groups = {d["group"] for d in docs["pool"]}
    for source, group in floor.items():
        assert group not in pool_groups and any(d["group"] == group for d in docs["pool_heldout"])
        # the nearest: no pool group of that source lies closer to the top of the interval
        nearest = max(group_position(3, d["group"]) for d in docs["pool"] if d["source"] == source)
        assert group_position(3, group) > nearest

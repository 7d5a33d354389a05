"""Shared fixtures: the real bigbench sdist (cached), a small held-out file, built tasks, a tiny model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jest.evaluation import bigbench
from jest.evaluation.tasks import build_tasks

REPO_ROOT = Path(__file__).resolve().parents[2]
# The pinned sdist is fetched once (358 MB, a minute or two) and shared with real runs.
CACHE_DIR = REPO_ROOT / "results" / "cache"
SEED = 7
# Real English text for the held-out file: the fables of BIG-bench's understanding_fables task.
HELDOUT_SOURCE = "understanding_fables/task.json"
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
def cache_dir() -> Path:
    """The project cache with the bigbench sdist present and verified (fetched on first use)."""
    bigbench.fetch_bigbench(CACHE_DIR)
    return CACHE_DIR


@pytest.fixture(scope="session")
def heldout_jsonl(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dozen real paragraphs (fables of 80-200 words) in the data stage's heldout.jsonl format."""
    examples = json.loads(bigbench.task_files(cache_dir, [HELDOUT_SOURCE])[HELDOUT_SOURCE])["examples"]
    path = tmp_path_factory.mktemp("heldout") / "heldout.jsonl"
    fables = []
    for example in examples:
        text = example["input"].split("What is the moral")[0].strip()  # the fable, without the question
        if len(text.split()) >= 80 and text not in fables:
            fables.append(text)
    with open(path, "w", encoding="utf-8") as handle:
        for index, text in enumerate(fables[:N_HELDOUT]):
            handle.write(json.dumps({"id": f"fable/{index}", "source": "bigbench", "text": text}) + "\n")
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

"""Byte-level BPE trained locally on the training text, saved as a transformers tokenizer.

Byte-level means every string is encodable (no <unk>), and the number of UTF-8
bytes behind each token is known exactly, which bits-per-byte needs.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

EOS = "<|endoftext|>"


def iter_texts(jsonl_paths: Iterable[Path]) -> Iterator[str]:
    for path in jsonl_paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)["text"]


def train_tokenizer(jsonl_paths: list[Path], vocab_size: int, out_dir: Path) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on the documents of `jsonl_paths` (in file order: deterministic)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(iter_texts(jsonl_paths), trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=EOS, unk_token=None)
    hf_tok.model_max_length = 1_000_000  # we chunk ourselves; silence length warnings
    out_dir.mkdir(parents=True, exist_ok=True)
    hf_tok.save_pretrained(out_dir)
    return hf_tok


class TokenizerError(RuntimeError):
    """The tokenizer folder does not load (a truncated or edited tokenizer.json)."""


def load_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    if not (Path(path) / "tokenizer.json").is_file():
        raise FileNotFoundError(f"no tokenizer at {path}: run the train_tokenizer stage first")
    try:
        return PreTrainedTokenizerFast.from_pretrained(str(path))
    except Exception as err:  # noqa: BLE001 - a JSONDecodeError, a tokenizers Exception: the file is damaged
        raise TokenizerError(
            f"the tokenizer {Path(path) / 'tokenizer.json'} does not load ({type(err).__name__}: {err}): it is "
            "truncated or was edited. Rebuild it, and what was built with it: `snakemake --cores N --forcerun "
            f"train_tokenizer [--configfile CONFIG]` (or delete {path} and re-run your snakemake command)") from err


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode map used by the ByteLevel pre-tokenizer."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_byte_lengths(tok: PreTrainedTokenizerFast) -> np.ndarray:
    """UTF-8 bytes each token id stands for (special tokens: 0). Indexed by token id."""
    decoder = _byte_decoder()
    special = set(tok.all_special_ids)
    lengths = np.zeros(len(tok), dtype=np.int32)
    for piece, idx in tok.get_vocab().items():
        lengths[idx] = 0 if idx in special else sum(1 for ch in piece if ch in decoder)
    return lengths

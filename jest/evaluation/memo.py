"""What lm-eval recomputes on every call but a run's snapshots share, computed once per process.

The evaluate stage handles all snapshots of a run in one process; each sends
lm-eval the same (context, continuation) requests with the same tokenizer, and
lm-eval re-collects the same environment record. Profiled on tiny snapshots
(2-core machine under heavy load, 2026-12-01): tokenizing was 41 s of a 3,402-
request snapshot (two encodes and one decode per request; the forward passes
126 s); the environment record 9.5 s of a warm 10-request snapshot's 15.2 s.
"""
from __future__ import annotations

import hashlib

_ENCODED: dict[tuple, dict[tuple[str, str], tuple[list[int], list[int]]]] = {}
_CLASSES: dict[type, type] = {}


def _tokenizer_key(lm) -> tuple:
    """What the tokens of a pair depend on: the tokenizer's full content and lm-eval's settings."""
    tok = lm.tokenizer
    backend = getattr(tok, "backend_tokenizer", None)
    content = backend.to_str() if backend is not None else repr(sorted(tok.get_vocab().items()))
    return (hashlib.sha256(content.encode("utf-8")).hexdigest(), getattr(lm, "add_bos_token", None),
            getattr(lm, "backend", None), getattr(lm, "max_length", None))


def memo_hflm(hflm: type) -> type:
    """A subclass of ``hflm`` (lm-eval's HFLM) whose ``_encode_pair`` is memoised per tokenizer."""
    if hflm not in _CLASSES:
        class MemoHFLM(hflm):
            def _encode_pair(self, context: str, continuation: str):
                if not hasattr(self, "_jest_encoded"):
                    self._jest_encoded = _ENCODED.setdefault(_tokenizer_key(self), {})
                pair = (context, continuation)
                if pair not in self._jest_encoded:
                    self._jest_encoded[pair] = super()._encode_pair(context, continuation)
                context_enc, continuation_enc = self._jest_encoded[pair]
                return list(context_enc), list(continuation_enc)  # callers get their own lists

        _CLASSES[hflm] = MemoHFLM
    return _CLASSES[hflm]


def env_info_once() -> None:
    """Make lm-eval collect its environment record once per process, not on every evaluation.

    ``simple_evaluate`` always calls ``add_env_info`` (torch's collect_env: ``pip list`` and
    other subprocesses); profiled on a warm tiny snapshot (5 items, loaded 2-core machine,
    2026-12-01) that was 9.5 s of 15.2 s. The record does not change within a process
    (and the results we keep, ``KEEP_KEYS``, do not include it).
    """
    import lm_eval.evaluator as evaluator

    if getattr(evaluator.add_env_info, "jest_once", False):
        return
    collect, record = evaluator.add_env_info, {}

    def add_env_info(storage: dict) -> None:
        if not record:
            collect(record)
        storage.update(record)

    add_env_info.jest_once = True
    evaluator.add_env_info = add_env_info

"""The model and tokenizer lm-eval scores: a snapshot folder (save_pretrained) or a model object."""
from __future__ import annotations

from pathlib import Path
from typing import Any


# One model object per architecture (config.json text) per process: the snapshots of a run share
# it, and each loads only its weights into it. from_pretrained builds and initialises the model
# anew every time: 1-4 s per tiny snapshot, a tenth of its evaluation (profiled 2026-12-02).
_SKELETONS: dict[str, Any] = {}


def _load_snapshot(model_dir: Path, auto_class: Any):
    config_text = (model_dir / "config.json").read_text(encoding="utf-8")
    weights = model_dir / "model.safetensors"
    model = _SKELETONS.get(config_text)
    if model is None or not weights.is_file():  # sharded or other formats: HF's own loader
        model = auto_class.from_pretrained(model_dir, local_files_only=True)
        _SKELETONS[config_text] = model
        return model
    from safetensors.torch import load_file

    state = load_file(weights)
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - tied:  # not the layout save_pretrained wrote: load it the slow way
        model = auto_class.from_pretrained(model_dir, local_files_only=True)
        _SKELETONS[config_text] = model
    return model


def load_model(model_dir_or_model: Any, tokenizer: Any):
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

    if isinstance(model_dir_or_model, (str, Path)):
        model_dir = Path(model_dir_or_model)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir} is not a saved model (no config.json): pass the folder written "
                                    f"by save_pretrained, or the model object")
        model = _load_snapshot(model_dir, AutoModelForCausalLM)
        name = str(model_dir)
    else:
        model, model_dir = model_dir_or_model, None
        name = type(model).__name__
    if tokenizer is None:
        if model_dir is None:
            raise ValueError("pass a tokenizer when evaluating an in-memory model")
        tokenizer = model_dir
    if not isinstance(tokenizer, PreTrainedTokenizerBase):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token: set pad_token (the eos token will do) before evaluating")
    return model, tokenizer, name

"""JEST reproducibility harness: data, model, one training loop, FLOP accounting, tracking."""
import os

# Everything runs offline: models are built from configs, tokenizers trained here.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "TOKENIZERS_PARALLELISM": "false",
    # An unreachable tracking server must not stall training for minutes per sync: our own
    # retries (jest.tracking.records) are the outer loop, the files stay the source of truth.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # the default 2 spends most of a dead server's ~8 s per try
}.items():
    os.environ.setdefault(_key, _value)

# Keep the Hugging Face cache inside the project's working folders.
os.environ.setdefault(
    "HF_HOME", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "cache", "hf"))

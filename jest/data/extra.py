"""Extra sources for real scales: local jsonl files and Hugging Face datasets.

Both kinds are reduced to "n rows and a way to fetch the texts of some rows",
then share one selection path: all rows in file order, or, when ``max_docs``
caps them, rows in seeded order until ``max_docs`` non-empty texts are found.
Empty and whitespace-only texts are dropped; a source with no text at all is refused.
Ids are ``<name>/<row index>`` (blank jsonl lines do not count as rows), stable for a
given file.

Labels: every document is labelled with its entry's ``name`` (source) and ``quality``;
a jsonl line may set its own ``source`` and / or ``quality`` field, which win for that
line (one file holding, say, clean and noisy text). Labels are reported by the analysis,
never seen by selection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jest.data.config import ExtraSourceConfig
from jest.data.documents import Document
from jest.data.errors import DataPrepError, MissingFileError
from jest.data.seeding import seeded_order

# Rows fetched from a Hugging Face dataset per call: large enough to amortise
# Arrow overhead, small enough that max_docs does not read the whole set.
_HF_BATCH = 1000

TextFetcher = Callable[[Sequence[int]], list[Any]]
# Per-row labels: row -> {"source": ..., "quality": ...} for the rows that set them.
RowLabels = dict[int, dict[str, str]]

# Fields a jsonl line may set to override its entry's labels (`name` as source, `quality`).
LINE_LABEL_FIELDS = ("source", "quality")
# Labels become metric names (sel_share_source_<label>): the same characters as source names.
_LABEL_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def _decode_line(source: ExtraSourceConfig, path: Path, line_number: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataPrepError(
            f"extra source '{source.name}': {path}:{line_number} is not UTF-8 (byte 0x{raw[exc.start]:02x} "
            f"at column {exc.start + 1}); re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def _line_labels(source: ExtraSourceConfig, path: Path, line_number: int, record: dict) -> dict[str, str]:
    labels = {}
    for field in LINE_LABEL_FIELDS:
        if field not in record:
            continue
        value = record[field]
        if not isinstance(value, str) or not _LABEL_RE.match(value):
            raise DataPrepError(
                f"extra source '{source.name}': {path}:{line_number} field '{field}' is {value!r}; a label is "
                f"a non-empty string of letters, digits, '_', '.', '-' (or leave the field out to use the "
                f"entry's {'name' if field == 'source' else 'quality'})"
            )
        labels[field] = value
    return labels


def _jsonl_rows(source: ExtraSourceConfig) -> tuple[int, TextFetcher, RowLabels]:
    path = Path(source.path)
    if not path.is_file():
        raise MissingFileError(f"extra source '{source.name}': jsonl file not found: {path.resolve()}")
    texts: list[Any] = []
    labels: RowLabels = {}
    with open(path, "rb") as handle:  # bytes: a bad byte is reported with its line, not as a raw decode error
        for line_number, raw in enumerate(handle, start=1):
            line = _decode_line(source, path, line_number, raw)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataPrepError(
                    f"extra source '{source.name}': {path}:{line_number} is not valid JSON: {exc}"
                ) from exc
            if not isinstance(record, dict) or source.text_field not in record:
                raise DataPrepError(
                    f"extra source '{source.name}': {path}:{line_number} has no field '{source.text_field}' "
                    f"(set text_field in the extra_sources entry)"
                )
            row_labels = _line_labels(source, path, line_number, record)
            if row_labels:
                labels[len(texts)] = row_labels
            texts.append(record[source.text_field])
    if not texts:
        raise DataPrepError(
            f"extra source '{source.name}': {path.resolve()} holds no rows (empty or blank lines only); "
            f"fill it with one JSON object per line ({{\"{source.text_field}\": \"...\"}}) or remove the entry"
        )
    return len(texts), lambda indices: [texts[i] for i in indices], labels


def _local_data_files(data_files: str | tuple[str, ...] | None) -> list[str]:
    """The entries of ``data_files`` that are plain local paths (not URLs or globs)."""
    if data_files is None:
        return []
    entries = [data_files] if isinstance(data_files, str) else list(data_files)
    return [entry for entry in entries if "://" not in entry and not any(c in entry for c in "*?[")]


def _hf_rows(source: ExtraSourceConfig) -> tuple[int, TextFetcher]:
    for entry in _local_data_files(source.data_files):
        if not Path(entry).exists():
            raise MissingFileError(f"extra source '{source.name}': data file not found: {Path(entry).resolve()}")
    import datasets  # heavy import, only needed for this kind

    data_files = list(source.data_files) if isinstance(source.data_files, tuple) else source.data_files
    try:
        dataset = datasets.load_dataset(source.path, name=source.hf_name, data_files=data_files, split=source.hf_split)
    except Exception as exc:  # datasets raises many unrelated types; all mean "cannot load"
        raise DataPrepError(
            f"extra source '{source.name}': datasets.load_dataset({source.path!r}, name={source.hf_name!r}, "
            f"data_files={data_files!r}, split={source.hf_split!r}) failed: {exc}. The stage runs offline: the "
            f"dataset must be in the local Hugging Face cache or in local files."
        ) from exc
    if source.text_field not in dataset.column_names:
        raise DataPrepError(
            f"extra source '{source.name}': dataset has no column '{source.text_field}' "
            f"(columns: {dataset.column_names}); set text_field in the extra_sources entry"
        )
    return len(dataset), lambda indices: dataset.select(indices)[source.text_field], {}


def load_extra_source(source: ExtraSourceConfig, split_seed: int) -> list[Document]:
    """Documents of one ``extra_sources`` entry, labelled with its name and quality (a jsonl line's
    own ``source`` / ``quality`` fields win)."""
    n_rows, fetch, row_labels = _jsonl_rows(source) if source.kind == "jsonl" else _hf_rows(source)
    limit = n_rows if source.max_docs is None else source.max_docs
    # Without a cap every row is taken, so the (costly) seeded order is not needed.
    order = (
        list(range(n_rows))
        if source.max_docs is None
        else [int(row) for row in seeded_order((str(i) for i in range(n_rows)), split_seed, f"extra:{source.name}")]
    )
    width = len(str(max(n_rows - 1, 0)))
    docs: list[Document] = []
    for start in range(0, len(order), _HF_BATCH):
        if len(docs) >= limit:
            break
        batch = order[start : start + _HF_BATCH]
        for row, text in zip(batch, fetch(batch), strict=True):
            if text is not None and not isinstance(text, str):
                raise DataPrepError(
                    f"extra source '{source.name}': row {row} field '{source.text_field}' is "
                    f"{type(text).__name__}, not a string"
                )
            if text is None or not text.strip():
                continue  # empty/whitespace-only texts carry nothing to learn from
            labels = row_labels.get(row, {})
            label = labels.get("source", source.name)
            docs.append(
                Document(
                    id=f"{source.name}/{row:0{width}d}",
                    text=text,
                    source=label,
                    group=label,
                    quality=labels.get("quality", source.quality),
                )
            )
            if len(docs) >= limit:
                break
    if not docs:
        where = Path(source.path).resolve() if source.kind == "jsonl" else source.path
        raise DataPrepError(
            f"extra source '{source.name}': {where} has no non-empty '{source.text_field}' text "
            f"({n_rows} rows, all empty or whitespace); point the entry at a file with text or remove it"
        )
    return docs

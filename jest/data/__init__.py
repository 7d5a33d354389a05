"""The ``prepare_data`` stage: fetch pinned sources, split, corrupt, write jsonl + manifest.

Entry point: :func:`jest.data.prepare.prepare_corpus`.
"""

"""Brown Corpus (tagged form C) to running text.

Source format: one sentence per line, ``word/tag`` tokens separated by spaces,
paragraphs separated by blank lines. The tag follows the *last* slash
(``1/2/cd`` is the word ``1/2``). Quotes are PTB-style: ``` `` ``` opens and
``''`` closes a double quote; a lone ``'`` is a single quote whose direction is
only known from parity, so it alternates open/close within a paragraph.
This copy of the corpus also doubles every ``;``, ``?``, ``!`` and ``:``
token; repeated punctuation is collapsed to one.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

# Punctuation glued to the word on its left ("word," "word)").
_ATTACH_LEFT = frozenset({",", ".", ";", ":", "?", "!", ")", "]"})
# Punctuation glued to the word on its right ("(word").
_ATTACH_RIGHT = frozenset({"(", "["})
# Punctuation never repeated in edited prose; a second copy in a row is dropped.
_COLLAPSE = frozenset({",", ".", ";", ":", "?", "!"})
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def strip_tag(token: str) -> str:
    """``'Atlanta's/np$'`` -> ``"Atlanta's"``; a token without a slash is returned as is."""
    word, slash, _tag = token.rpartition("/")
    return word if slash else token


def detokenize_words(words: Iterable[str]) -> str:
    """Join untagged tokens with English spacing and straight quotes.

    ``--`` dashes are ordinary tokens and so stay spaced, as printed in the source.
    """
    pieces: list[str] = []
    glue_next = True  # no space before the first word
    single_quote_open = False
    previous = ""
    for word in words:
        if word == "``":
            text, glue_left, glue_right = '"', False, True
        elif word == "''":
            text, glue_left, glue_right = '"', True, False
        elif word == "'":
            text, glue_left, glue_right = "'", single_quote_open, not single_quote_open
            single_quote_open = not single_quote_open
        elif word in _COLLAPSE and pieces and (word == previous or (word == "." and pieces[-1].endswith("."))):
            # This copy of the corpus doubles every ; ? ! and : ("?/. ?/.") and repeats
            # the period after a sentence-final abbreviation ("Jr./np ./.").
            continue
        else:
            text, glue_left, glue_right = word, word in _ATTACH_LEFT, word in _ATTACH_RIGHT
        if pieces and not glue_left and not glue_next:
            pieces.append(" ")
        pieces.append(text)
        glue_next = glue_right
        previous = word
    return "".join(pieces)


def _is_headline(tokens: list[str]) -> bool:
    # Headlines and section titles carry the "-hl" tag suffix on every token.
    return all(token.rpartition("/")[2].endswith("-hl") for token in tokens)


def tagged_paragraphs(tagged: str) -> list[list[list[str]]]:
    """Split a tagged file into paragraphs, each a list of sentences (token lists).

    A headline line shares its block with the following sentence in the source
    ("Merger proposed" / "However, the jury said ..."); it becomes a paragraph of
    its own so it is not run into that sentence.
    """
    paragraphs: list[list[list[str]]] = []
    for block in _BLANK_LINE.split(tagged):
        sentences = [line.split() for line in block.splitlines() if line.strip()]
        for _is_hl, run in itertools.groupby(sentences, key=_is_headline):
            paragraphs.append(list(run))
    return paragraphs


def detokenize_brown(tagged: str) -> str:
    """A whole tagged Brown file as plain text: paragraphs joined by a blank line.

    Within a paragraph the sentences are detokenized as one token stream (so a
    quote opened in one sentence closes in a later one) and thus joined by a space.
    """
    return "\n\n".join(
        detokenize_words(strip_tag(token) for sentence in paragraph for token in sentence)
        for paragraph in tagged_paragraphs(tagged)
    )

"""Brown tag stripping and detokenization, on hand-written and real source text."""

from __future__ import annotations

import re

import pytest

from jest.data.brown import detokenize_brown, detokenize_words, strip_tag, tagged_paragraphs
from jest.data.sources import PINS, iter_members


@pytest.mark.parametrize(
    ("token", "word"),
    [
        ("The/at", "The"),
        ("Atlanta's/np$", "Atlanta's"),
        ("``/``", "``"),
        ("''/''", "''"),
        ("./.", "."),
        ("1/2/cd", "1/2"),  # the tag follows the LAST slash
        ("and/or/cc", "and/or"),
        ("//in", "/"),
        ("--/--", "--"),
    ],
)
def test_strip_tag(token: str, word: str) -> None:
    assert strip_tag(token) == word


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("He said , `` no '' .", 'He said, "no".'),
        ("`` Yes '' , he said .", '"Yes", he said.'),
        ("the city ( see below ) ; then", "the city (see below); then"),
        ("men -- who wore suits -- came", "men -- who wore suits -- came"),
        ("Why ? ? Because !", "Why? Because!"),  # the source doubles ? ! ; :
        ("Section 2 : : The", "Section 2: The"),
        ("won by Ivan Allen Jr. .", "won by Ivan Allen Jr."),
        ("a ' pro ' letter , a ' con ' one", "a 'pro' letter, a 'con' one"),
        ("`` He said : ' I quit ' '' .", "\"He said: 'I quit'\"."),
        ("costs $172,000 [ sic ] now", "costs $172,000 [sic] now"),
    ],
)
def test_detokenize_words(words: str, expected: str) -> None:
    assert detokenize_words(words.split()) == expected


TAGGED = (
    "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' was/bedz found/vbn ./.\n\n\n"
    "Merger/nn-hl proposed/vbn-hl \n"
    "However/wrb ,/, it/pps said/vbd it/pps believes/vbz ``/`` these/dts offices/nns should/md merge/vb ./.\n"
    "It/pps urged/vbd action/nn (/( soon/rb )/) ;/. ;/. the/at end/nn ./. ''/''\n\n\n"
    "\tWhy/wrb ?/. ?/. He/pps left/vbd --/-- quietly/rb --/-- at/in 1/2/cd past/in ./.\n"
)
EXPECTED = (
    'The jury said "no evidence" was found.\n\n'
    "Merger proposed\n\n"
    'However, it said it believes "these offices should merge. It urged action (soon); the end."\n\n'
    "Why? He left -- quietly -- at 1/2 past."
)


def test_detokenize_brown_paragraphs_headlines_and_quotes() -> None:
    assert detokenize_brown(TAGGED) == EXPECTED


def test_tagged_paragraphs_structure() -> None:
    paragraphs = tagged_paragraphs(TAGGED)
    # 3 blank-line blocks, the headline split off the second one -> 4 paragraphs.
    assert [len(paragraph) for paragraph in paragraphs] == [1, 1, 2, 1]


def test_real_brown_text(brown_docs) -> None:
    docs = {doc.id: doc for doc in brown_docs}
    assert len(docs) == 500
    assert len({doc.group for doc in docs.values()}) == 15
    ca01 = docs["brown/ca01"].text
    assert ca01.startswith(
        "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election "
        'produced "no evidence" that any irregularities took place.\n\nThe jury further said'
    )
    assert "\n\nMerger proposed\n\nHowever, the jury said" in ca01
    everything = "\n".join(doc.text for doc in docs.values())
    # Inch marks (10'') are words of the source; quote tokens must be gone.
    assert not re.search(r"(^|\s)(``|'')(\s|$)", everything)
    for artefact in ("``", " ,", " .", " ;", " ?", " !", " )", "( ", "??", ";;", "/at ", "/nn "):
        assert artefact not in everything, artefact
    assert not re.search(r"\n{3,}", everything)


def test_brown_members_are_the_500_texts(cache_dir) -> None:
    names = [name for name, _ in iter_members(cache_dir / "npm" / PINS["brown"].tarball_name, r"package/c[a-r]\d\d")]
    assert len(names) == 500 and names[0] == "package/ca01" and names[-1] == "package/cr09"

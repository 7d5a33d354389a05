"""Each corruption is pure, seeded, structure-preserving and actually corrupts."""

from __future__ import annotations

from collections import Counter

import pytest

from jest.data.corruptions import BOILERPLATE_BLOCK, boilerplate, char_noise, corrupt, shuffle_words

TEXT = (
    "The jury said it did find that many of the laws are outmoded. It recommended that legislators act "
    '"to have these laws studied and revised". The grand jury commented on a number of other topics!\n\n'
    "Mr. Byrd said the bill would pass. Would it? Nobody in the city council was sure of it at all, "
    "but the mayor expected a vote before the end of the session in early spring.\n\n"
    "A short closing paragraph with a handful of plain ordinary words in it."
)


def test_shuffle_words_keeps_words_per_sentence_and_layout() -> None:
    out = shuffle_words(TEXT, seed=7)
    assert out != TEXT
    assert out.count("\n") == TEXT.count("\n")
    assert [line == "" for line in out.split("\n")] == [line == "" for line in TEXT.split("\n")]
    # Same words in each sentence (a bag-of-words view cannot tell them apart) ...
    assert sorted(out.split()) == sorted(TEXT.split())
    # ... and they stay in their own paragraph.
    for clean, shuffled in zip(TEXT.split("\n"), out.split("\n"), strict=True):
        assert Counter(clean.split()) == Counter(shuffled.split())
    # Word order is really destroyed: few word bigrams survive.
    bigrams = lambda t: set(zip(t.split(), t.split()[1:], strict=False))  # noqa: E731
    assert len(bigrams(out) & bigrams(TEXT)) < 0.3 * len(bigrams(TEXT))


def test_shuffle_words_stays_inside_sentences() -> None:
    text = "a1 a2 a3 a4 a5. b1 b2 b3 b4 b5? c1 c2 c3 c4 c5\nd1 d2 d3 d4 d5"
    words = shuffle_words(text, seed=11).replace("\n", " ").split()
    assert [word[0] for word in words] == list("aaaaabbbbbcccccddddd")
    assert words != text.split()


def test_shuffle_words_is_seeded() -> None:
    assert shuffle_words(TEXT, seed=7) == shuffle_words(TEXT, seed=7)
    assert shuffle_words(TEXT, seed=7) != shuffle_words(TEXT, seed=8)


def test_shuffle_words_pinned_output() -> None:
    # Guards the cross-version stability of the generator: a change here changes every corpus.
    assert shuffle_words("one two three four five. six seven eight", seed=1) == (
        "two five. three four one eight six seven"
    )


def test_char_noise_rate_zero_is_identity() -> None:
    assert char_noise(TEXT, seed=3, rate=0.0) == TEXT


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.3])
def test_char_noise_hits_about_rate_of_characters(rate: float) -> None:
    # "é" is outside the noise alphabet, so every hit is visible: a substitution or
    # deletion removes an "é", a substitution or insertion adds a foreign character.
    n = 30000
    out = char_noise("é" * n, seed=3, rate=rate)
    removed = n - out.count("é")
    added = len(out) - out.count("é")
    # Each of the three operations has probability rate/3 per character.
    assert removed == pytest.approx(2 / 3 * rate * n, rel=0.12)
    assert added == pytest.approx(2 / 3 * rate * n, rel=0.12)


def test_char_noise_keeps_newlines() -> None:
    out = char_noise(TEXT, seed=3, rate=0.3)
    assert out != TEXT
    assert out.count("\n") == TEXT.count("\n")
    assert [len(p) > 0 for p in out.split("\n")] == [len(p) > 0 for p in TEXT.split("\n")]


def test_char_noise_is_seeded_and_checks_rate() -> None:
    assert char_noise(TEXT, seed=3, rate=0.1) == char_noise(TEXT, seed=3, rate=0.1)
    assert char_noise(TEXT, seed=3, rate=0.1) != char_noise(TEXT, seed=4, rate=0.1)
    with pytest.raises(ValueError):
        char_noise(TEXT, seed=3, rate=1.5)


def test_boilerplate_dominates_and_keeps_the_article() -> None:
    article = "\n\n".join([TEXT] * 4)  # about 1,800 characters, 12 paragraphs
    out = boilerplate(article, seed=5)
    pieces = out.split("\n\n")
    copies = pieces.count(BOILERPLATE_BLOCK)
    assert copies >= 4
    # The original paragraphs are all there, in order, untouched.
    assert [piece for piece in pieces if piece != BOILERPLATE_BLOCK] == article.split("\n\n")
    share = copies * len(BOILERPLATE_BLOCK) / len(out)
    assert 0.4 < share < 0.7
    assert "cookies" in out and "Click here" in out


def test_boilerplate_is_seeded_and_handles_one_paragraph() -> None:
    assert boilerplate(TEXT, seed=5) == boilerplate(TEXT, seed=5)
    assert boilerplate(TEXT, seed=5) != boilerplate(TEXT, seed=6)
    single = boilerplate("Just one line.", seed=1)
    assert single.split("\n\n").count(BOILERPLATE_BLOCK) == 1 and "Just one line." in single


def test_corrupt_dispatches_and_rejects_unknown_kinds() -> None:
    assert corrupt(TEXT, "shuffle_words", 9, 0.1) == shuffle_words(TEXT, 9)
    assert corrupt(TEXT, "char_noise", 9, 0.2) == char_noise(TEXT, 9, 0.2)
    assert corrupt(TEXT, "boilerplate", 9, 0.1) == boilerplate(TEXT, 9)
    with pytest.raises(ValueError, match="unknown corruption kind 'typos'"):
        corrupt(TEXT, "typos", 9, 0.1)

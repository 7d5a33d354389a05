"""Multiple-choice items generated from the held-out documents: nothing to fetch, nothing that can vanish.

Each family turns held-out text (the data stage's ``heldout.jsonl``: documents
no model trains on) into lm-eval ``multiple_choice`` rows ``{id, context,
choices, gold, ...}``, scored by the log-likelihood of each choice after the
context. The text is pinned with the corpus (its sha256 is in the data
manifest), so the items are a pure function of (held-out bytes, seed), and
there is always enough of them: a family is capped by ``MAX_ITEMS``, not by a
release someone else may delete.

Every family is built so that a model which ignores the context scores exactly
chance: the correct form and its rivals are balanced (each form of a pair is
the answer equally often; each discourse marker is the answer equally often
and appears among the rivals as often as any other). What lifts a family above
chance is the use of the context, i.e. what training teaches:

==========================  =========================================================================
family                      item
==========================  =========================================================================
agreement                   The 20 words before a finite "is/are", "was/were", "has/have",
                            "does/do" (or a negated form) in held-out text; choices: the verb
                            as written and its other-number form. Chance 0.5.
discourse_marker            The 30 words before a sentence that opens with a discourse marker
                            or connective ("However," "For example," "But", "Although" ...);
                            choices: that sentence's first words after the true marker or after
                            3 other markers of the same kind (with a comma / without). Chance 0.25.
word_order                  The 20 words before a held-out sentence; choices: the sentence as
                            written and 3 copies with two adjacent lower-case words swapped.
                            Chance 0.25.
continuation                30 words of a held-out document; choices: its next 15 words and
                            3 15-word spans of other documents (HellaSwag-like). Chance 0.25.
==========================  =========================================================================

Heuristics on raw text make a few bad items (a subjunctive "if it were" is
excluded, an abbreviation can split a sentence); they cost a little of the
ceiling, not the chance level, which the balance fixes.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

MAX_ITEMS = 1000  # per family; lm-eval's `limit` then takes a seeded sample of them

AGREEMENT_CONTEXT_WORDS = 20
AGREEMENT_PER_FORM = 125  # at most this many items with each form of a pair as the answer (<= MAX_ITEMS in all)
# Number pairs of finite verbs. Swapping one for the other breaks agreement with the subject in
# edited prose ("the athletes are" -> "is"; "I have" -> "has"; "would have" -> "would has").
AGREEMENT_PAIRS = (("is", "are"), ("was", "were"), ("has", "have"), ("does", "do"),
                   ("isn't", "aren't"), ("wasn't", "weren't"), ("doesn't", "don't"))
# "if it were" / "as though he were": the subjunctive "were" has "was" as an accepted rival.
_SUBJUNCTIVE_CUES = frozenset({"if", "though", "wish", "wished", "whether"})

MARKER_CONTEXT_WORDS = 30
MARKER_CONTINUATION_WORDS = 10
MARKER_PER_ANSWER = 40  # at most this many items with each marker as the answer
MARKER_RIVALS = 3
MIN_MARKERS = MARKER_RIVALS + 1
# Sentence-initial discourse markers, in two kinds that never mix in one item, so that the
# choices never differ by a comma alone.
COMMA_MARKERS = ("However", "Thus", "Therefore", "Moreover", "Furthermore", "Nevertheless", "Indeed",
                 "Instead", "Meanwhile", "Similarly", "Consequently", "Hence", "Finally", "Still", "Also",
                 "Besides", "Otherwise", "Of course", "For example", "For instance", "In fact",
                 "In addition", "On the other hand", "In other words", "As a result", "At the same time",
                 "In short", "Then", "Now", "Yet", "Later", "Perhaps", "Actually")
# Without a comma: coordinators, adverbs and the subordinators that open a sentence ("When he came,
# ..." / "Although he came, ..."): which one fits is a matter of what the context said.
BARE_MARKERS = ("But", "And", "So", "Yet", "Or", "Then", "Still", "Thus", "Hence", "Now", "Also", "Nor",
                "When", "If", "As", "Although", "Though", "Since", "While", "Because", "Unless", "Before",
                "After", "Once", "Until", "Whether")

WORD_ORDER_CONTEXT_WORDS = 20
WORD_ORDER_MIN_WORDS, WORD_ORDER_MAX_WORDS = 6, 25
WORD_ORDER_RIVALS = 3
_SWAPPABLE = re.compile(r"^[a-z]+$")

CONTEXT_WORDS = 30
CONTINUATION_WORDS = 15
N_DISTRACTORS = 3
ITEMS_PER_DOC = 5

# A sentence ends at . ! or ? (and any closing quote or bracket) followed by space and a capital or
# an opening quote. Abbreviations ("Mr. Smith") split too: the sentence is then shorter, still text.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z])")


def _sentences(text: str) -> list[list[str]]:
    """The document's sentences as lists of whitespace tokens (punctuation stays on its word)."""
    out, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        out.append(text[start:match.end()].split())
        start = match.end()
    out.append(text[start:].split())
    return [words for words in out if words]


def _capitalised(word: str, like: str) -> str:
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def shuffled_choices(choices: list[str], gold: str, rng: random.Random) -> tuple[list[str], int]:
    """Choices in a seeded order (lm-eval breaks ties to the first choice, so the answer must move)."""
    order = list(choices)
    rng.shuffle(order)
    return order, order.index(gold)


def _cap(rows: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    return rows if len(rows) <= MAX_ITEMS else rng.sample(rows, MAX_ITEMS)


# ----------------------------------------------------------------------------- agreement


def agreement_rows(docs: Sequence[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Verb-number minimal pairs from held-out text, each form of a pair the answer equally often."""
    other = {a: b for pair in AGREEMENT_PAIRS for a, b in (pair, pair[::-1])}
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in docs:
        words = doc["text"].split()
        for i in range(3, len(words)):
            form = words[i].lower()
            if form not in other:
                continue
            before = [w.lower().strip("\"'(,") for w in words[max(0, i - 3):i]]
            if form in ("were", "weren't") and _SUBJUNCTIVE_CUES & set(before):
                continue
            context = " ".join(words[max(0, i - AGREEMENT_CONTEXT_WORDS):i])
            found[form].append({"id": f"{doc['id']}/t{i}", "context": context, "written": words[i],
                                "rival": _capitalised(other[form], words[i]), "form": form})
    rows = []
    for a, b in AGREEMENT_PAIRS:
        n = min(len(found[a]), len(found[b]), AGREEMENT_PER_FORM)
        for form in (a, b):
            for item in sorted(rng.sample(found[form], n), key=lambda r: r["id"]):
                choices, gold = shuffled_choices([item["written"], item["rival"]], item["written"], rng)
                rows.append({"id": item["id"], "context": item["context"], "choices": choices, "gold": gold,
                             "pair": f"{a}/{b}", "form": form})
    return _cap(rows, rng)


# ----------------------------------------------------------------------------- discourse markers


def _opening_marker(sentence: list[str], markers: Sequence[str], comma: bool) -> tuple[str, int] | None:
    """(marker, words it spans) if the sentence opens with one of ``markers`` (then a comma, or not)."""
    for marker in markers:
        parts = marker.split()
        head = sentence[:len(parts)]
        if len(head) < len(parts) or len(sentence) <= len(parts):
            continue
        if comma:
            if head[:-1] == parts[:-1] and head[-1] == parts[-1] + ",":
                return marker, len(parts)
        elif head == parts and sentence[len(parts)][:1].islower():
            return marker, len(parts)
    return None


def _balanced_per_answer(found: dict[str, list[dict[str, Any]]], rng: random.Random) -> dict[str, list]:
    """The same number of items for every marker kept, chosen to keep the most items (>= MIN_MARKERS markers)."""
    counts = sorted((min(len(v), MARKER_PER_ANSWER) for v in found.values()), reverse=True)
    best = max(((n, k + 1) for k, n in enumerate(counts) if k + 1 >= MIN_MARKERS and n > 0),
               key=lambda nk: nk[0] * nk[1], default=None)
    if best is None:
        return {}
    per_marker = best[0]
    return {marker: sorted(rng.sample(items, per_marker), key=lambda r: r["id"])
            for marker, items in sorted(found.items()) if len(items) >= per_marker}


def discourse_marker_rows(docs: Sequence[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The true opening marker of a held-out sentence among 3 others of its kind; every marker kept is
    the answer equally often, and the rivals are drawn uniformly from the same markers."""
    rows = []
    for kind, markers, comma in (("comma", COMMA_MARKERS, True), ("bare", BARE_MARKERS, False)):
        # Longer markers first: "On the other hand," is not "On".
        ordered = sorted(markers, key=lambda m: -len(m.split()))
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for doc in docs:
            preceding: list[str] = []
            for sentence in _sentences(doc["text"]):
                hit = _opening_marker(sentence, ordered, comma) if len(preceding) >= 8 else None
                if hit is not None:
                    marker, span = hit
                    rest = sentence[span:span + MARKER_CONTINUATION_WORDS]
                    found[marker].append({"id": f"{doc['id']}/w{len(preceding)}",
                                          "context": " ".join(preceding[-MARKER_CONTEXT_WORDS:]),
                                          "rest": " ".join(rest)})
                preceding.extend(sentence)
        kept = _balanced_per_answer(found, rng)
        for marker, items in kept.items():
            others = sorted(m for m in kept if m != marker)
            for item in items:
                spelled = [f"{m}{',' if comma else ''} {item['rest']}"
                           for m in [marker, *rng.sample(others, MARKER_RIVALS)]]
                choices, gold = shuffled_choices(spelled, spelled[0], rng)
                rows.append({"id": item["id"], "context": item["context"], "choices": choices, "gold": gold,
                             "marker": marker, "kind": kind})
    return _cap(rows, rng)


# ----------------------------------------------------------------------------- word order


def word_order_rows(docs: Sequence[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """A held-out sentence as written among 3 copies with two adjacent lower-case words swapped."""
    rows = []
    for doc in docs:
        preceding: list[str] = []
        for sentence in _sentences(doc["text"]):
            # Never the first word: a capital moved inside the sentence would give the answer away.
            slots = [i for i in range(1, len(sentence) - 1)
                     if _SWAPPABLE.match(sentence[i]) and _SWAPPABLE.match(sentence[i + 1])
                     and sentence[i] != sentence[i + 1]]
            if (preceding and WORD_ORDER_MIN_WORDS <= len(sentence) <= WORD_ORDER_MAX_WORDS
                    and len(slots) >= WORD_ORDER_RIVALS):
                true = " ".join(sentence)
                rivals = []
                for i in sorted(rng.sample(slots, WORD_ORDER_RIVALS)):
                    swapped = list(sentence)
                    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
                    rivals.append(" ".join(swapped))
                choices, gold = shuffled_choices([true, *rivals], true, rng)
                rows.append({"id": f"{doc['id']}/w{len(preceding)}",
                             "context": " ".join(preceding[-WORD_ORDER_CONTEXT_WORDS:]),
                             "choices": choices, "gold": gold})
            preceding.extend(sentence)
    return _cap(rows, rng)


# ----------------------------------------------------------------------------- continuation


def continuation_rows(docs: Sequence[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """30 words of a document, its true next 15 words vs 3 spans of other documents."""
    words = [doc["text"].split() for doc in docs]
    flat = [" ".join(w) for w in words]
    span = CONTEXT_WORDS + CONTINUATION_WORDS
    donors = [i for i, w in enumerate(words) if len(w) >= CONTINUATION_WORDS]
    rows = []
    for i, doc in enumerate(docs):
        n_windows = len(words[i]) // span
        if n_windows == 0:
            continue
        # Distractors come from other documents, never from a duplicate of this one.
        others = [j for j in donors if j != i and flat[j] != flat[i]]
        if len(others) < N_DISTRACTORS:
            raise ValueError(f"the continuation family needs at least {N_DISTRACTORS + 1} distinct held-out "
                             f"documents of >= {CONTINUATION_WORDS} words; got {len(others) + 1}")
        for window in sorted(rng.sample(range(n_windows), min(ITEMS_PER_DOC, n_windows))):
            start = window * span
            context = " ".join(words[i][start:start + CONTEXT_WORDS])
            true = " ".join(words[i][start + CONTEXT_WORDS:start + span])
            distractors: list[str] = []
            for j in rng.sample(others, len(others)):  # a seeded order of the other documents
                offset = rng.randrange(len(words[j]) - CONTINUATION_WORDS + 1)
                candidate = " ".join(words[j][offset:offset + CONTINUATION_WORDS])
                # Shared passages (quotes, boilerplate) could make a "distractor" true: skip those.
                if candidate not in flat[i] and candidate not in distractors:
                    distractors.append(candidate)
                if len(distractors) == N_DISTRACTORS:
                    break
            if len(distractors) < N_DISTRACTORS:
                continue
            choices, gold = shuffled_choices([true, *distractors], true, rng)
            rows.append({"id": f"{doc['id']}/w{window}", "context": context, "choices": choices, "gold": gold})
    return _cap(rows, rng)


FAMILIES: dict[str, Callable[[Sequence[dict[str, Any]], random.Random], list[dict[str, Any]]]] = {
    "agreement": agreement_rows,
    "discourse_marker": discourse_marker_rows,
    "word_order": word_order_rows,
    "continuation": continuation_rows,
}

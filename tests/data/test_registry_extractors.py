"""Each registry format on a small fixture: HTML, reST, POD, troff, dictd, WordNet, fortunes, SWORD, .deb."""

from __future__ import annotations

import gzip

from jest.data.debfetch import iter_deb_members
from jest.data.extractors.lexicon import extract_dictd, extract_fortunes, extract_sword_ztext, extract_wordnet
from jest.data.extractors.markup import extract_files, html_to_text, pod_to_text, rst_to_text, troff_to_text
from tests.data.registry_fixtures import build_deb, dictd_files, sword_files, wordnet_line


def test_html_keeps_prose_drops_scripts_navigation_and_entities():
    page = (b"<html><head><title>T</title><style>p{}</style></head><body><nav>Prev Up Next</nav>"
            b"<h1>Joins</h1><p>Rows of one table &amp; <b>another</b>.</p><script>var x = 1;</script>"
            b"<ul><li>one</li><li>two</li></ul><!-- hidden --></body></html>")
    text = html_to_text(page)
    assert text.splitlines() == ["Joins", "", "Rows of one table & another.", "", "one", "", "two"]
    assert "var x" not in text and "Prev" not in text and "hidden" not in text


def test_rst_keeps_role_and_link_words_drops_directives_targets_and_adornments():
    source = ("Title\n=====\n\n.. _anchor:\n\n.. note::\n   :class: x\n\nUse :func:`len` or :class:`~a.B`, see "
              "`the docs <https://x>`_ and ``code``.\n\n.. comment line\n")
    text = rst_to_text(source)
    assert "Title" in text and "Use len or a.B, see the docs and code." in text
    assert ".." not in text and "=====" not in text and ":class:" not in text and "https" not in text


def test_pod_keeps_headings_and_codes_drops_begin_end_blocks():
    source = "=head1 NAME\n\nperlx - B<bold> and C<< $a <=> $b >>\n\n=begin html\n\n<p>raw</p>\n\n=end html\n\n=cut\n"
    text = pod_to_text(source)
    assert text.splitlines()[0] == "NAME"
    assert "perlx - bold and $a <=> $b" in text and "raw" not in text and "=head" not in text


def test_troff_keeps_words_of_font_macros_drops_requests_and_comments():
    source = ('.\\" a comment\n.TH LS 1\n.SH NAME\nls \\- list directory\n.SH DESCRIPTION\n.B ls\nlists '
              '\\fIfiles\\fP.\n.BR stat (2)\n.sp\n')
    text = troff_to_text(source)
    assert "ls - list directory" in text and "ls\nlists files." in text and "stat(2)" in text
    assert "comment" not in text and "TH" not in text and ".sp" not in text
    docs = list(extract_files([("usr/share/man/man1/ls.1.gz", gzip.compress(source.encode())),
                               ("usr/share/man/man1/dir.1.gz", gzip.compress(b".so man1/ls.1\n"))], "troff"))
    assert [d.name for d in docs] == ["usr/share/man/man1/ls.1.gz"]  # a .so link has no text of its own


def test_dictd_skips_metadata_and_attribution_lines_and_groups_by_prefix():
    files = dictd_files([("Apple", "Apple \\Ap\"ple\\, n.\n   The fruit.\n   [1913 Webster]"),
                         ("Apricot", "Apricot, n. A fruit."), ("Banana", "Banana, n. Another fruit.")])
    docs = list(extract_dictd(files.items()))
    assert [(d.group, d.text.count("fruit")) for d in docs] == [("lex:ap", 2), ("lex:ba", 1)]
    assert "metadata" not in docs[0].text and "[1913 Webster]" not in docs[0].text


def test_wordnet_renders_lemmas_and_gloss_and_skips_the_licence_header():
    data = "\n".join(["  1 This software and database is being provided", wordnet_line(100, ["apple"], "fruit"),
                      wordnet_line(200, ["banana", "plantain"], "a long fruit; \"yellow\"")]) + "\n"
    docs = list(extract_wordnet([("usr/share/wordnet/data.noun", data.encode())]))
    assert [(d.group, d.text) for d in docs] == [("lex:ap", "apple: fruit"),
                                                 ("lex:ba", 'banana, plantain: a long fruit; "yellow"')]


def test_fortunes_split_on_percent_lines():
    docs = list(extract_fortunes([("usr/share/games/fortunes/art", b"One quip.\n-- A\n%\nTwo quips.\n%\n")]))
    assert len(docs) == 1 and docs[0].text == "One quip.\n-- A\n\nTwo quips."


def test_sword_ztext_drops_notes_keeps_words_apart_one_document_per_book():
    book = ('<title>Mark</title><verse sID="v1"/><w>John</w> <w>came</w> <w>baptizing</w><note>or, immersing'
            '</note><w>in</w> the wilderness. ' + "word " * 30)
    docs = list(extract_sword_ztext(sword_files(["<milestone/>", book]).items()))
    assert len(docs) == 1  # the milestone-only block has no text
    assert "John came baptizing in the wilderness." in docs[0].text and "immersing" not in docs[0].text


def test_deb_members_stream_from_a_real_ar_archive(tmp_path):
    deb = build_deb(tmp_path / "x_1.0_all.deb", {"usr/share/doc/x/a.txt": b"alpha", "usr/share/doc/x/b.bin": b"b"})
    assert list(iter_deb_members(deb, r".*\.txt")) == [("usr/share/doc/x/a.txt", b"alpha")]


def test_catalogue_labels_are_known_and_only_english_members_are_read():
    import re

    from jest.data.catalogue import CATALOGUE, QUALITY_CLASSES, ROLES

    assert all(e.quality in QUALITY_CLASSES and e.role in ROLES for e in CATALOGUE.values())
    assert [e.name for e in CATALOGUE.values() if e.role == "external"] == ["web_bible"]
    linux = re.compile(CATALOGUE["linux_doc"].members)
    base = "usr/share/doc/linux-doc-6.1/html/_sources/"
    assert linux.fullmatch(base + "gpu/drm-usage-stats.rst.txt")
    assert not linux.fullmatch(base + "translations/zh_CN/process/howto.rst.txt")
    assert not re.fullmatch(CATALOGUE["sagemath_doc"].members, "usr/share/doc/sagemath/html/de/tutorial/index.html")

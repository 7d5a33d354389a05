"""The registry corpus catalogue: which packages, at which pinned versions, read how, labelled how.

Every entry names its registry package, the pinned version and sha256 of the
file fetched on 2026-12-01 (Debian 12 "bookworm" mirror), its licence, how its
text is extracted, and its provenance labels:

* ``quality`` (the class the analysis reports; selection never sees it):
  ``curated`` = edited long-form prose with an editorial process;
  ``reference`` = dictionaries, glossaries, manuals of uneven editing;
  ``noisy`` = templated API-reference HTML, code-heavy pages, informal one-liners.
* ``role``: ``curated`` sources are split into curated (reference-model
  training), held-out and pool shares; ``pool`` sources go to the pool with a
  held-out share; the ``external`` source is held out only and never trained on.

Curated split (for reference models): the CPython 3.11 documentation (reST
sources), the PostgreSQL 15 manual and Perl's own POD manuals. All three are
long-form prose written and reviewed through their projects' patch review,
with a style guide, and are read by millions; they are the closest this
machine's registries come to Brown's edited prose. Linux's documentation is
left out of curated (its files range from polished guides to terse notes),
and so are the dictionaries (entries, not prose).
"""

from __future__ import annotations

from dataclasses import dataclass

from jest.data.debfetch import DebPin

QUALITY_CLASSES = ("curated", "reference", "noisy", "external")
ROLES = ("curated", "pool", "external")


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    pin: DebPin
    licence: str
    copyleft: bool
    extractor: str  # html | rst | pod | troff | dictd | wordnet | fortunes | plain | sword_ztext
    members: str  # full-match regex over member paths inside the package
    quality: str
    role: str
    # Templated sources: lines repeated across many of the source's pages are navigation/footers.
    templated: bool = False
    registry: str = "debian"

    @property
    def label(self) -> str:
        return f"{self.pin.package}={self.pin.version}"


def _deb(package: str, version: str, sha256: str) -> DebPin:
    return DebPin(package, version, sha256)


_DOC = "usr/share/doc"
ENTRIES: tuple[CatalogueEntry, ...] = (
    # --- curated role: edited prose ---
    CatalogueEntry("python_doc", _deb("python3.11-doc", "3.11.2-6+deb12u9",
                   "5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be"),
                   "PSF-2.0", False, "rst", rf"{_DOC}/python3\.11/html/_sources/.*\.rst\.txt", "curated", "curated"),
    CatalogueEntry("postgresql_doc", _deb("postgresql-doc-15", "15.20-0+deb12u1",
                   "4c44bf2c599f208b3f46454a6cf7a72e25ec46ff74d37b59dd31ad76b00eebb7"),
                   "PostgreSQL", False, "html", rf"{_DOC}/postgresql-doc-15/html/.*\.html", "curated", "curated",
                   templated=True),
    CatalogueEntry("perl_doc", _deb("perl-doc", "5.36.0-7+deb12u4",
                   "f4269cff4576d6f02a6756df842988e58451c7e945b08517dd235531b24e48f8"),
                   "GPL-1+ or Artistic", True, "pod", r"usr/share/perl/[^/]+/pod/.*\.pod", "curated", "curated"),
    # --- pool role: reference ---
    CatalogueEntry("gcide", _deb("dict-gcide", "0.48.5+nmu2",
                   "7b0af5cfde3cbdef5e9d6e78f92ec335ced7c2790f37a40f49bebc6f7347ac0f"),
                   "GPL-2+", True, "dictd", r"usr/share/dictd/gcide\.(index|dict\.dz)", "reference", "pool"),
    CatalogueEntry("wordnet", _deb("wordnet-base", "1:3.0-37",
                   "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752"),
                   "WordNet (BSD-like)", False, "wordnet", r"usr/share/wordnet/data\.(noun|verb|adj|adv)",
                   "reference", "pool"),
    CatalogueEntry("foldoc", _deb("dict-foldoc", "20230119-1",
                   "745cbedb55c2da609cc88ee0284e9d11a67a11ae3709daf7bad0e895ac3294c3"),
                   "GFDL-1.1+", True, "dictd", r"usr/share/dictd/foldoc\.(index|dict\.dz)", "reference", "pool"),
    CatalogueEntry("jargon", _deb("jargon-text", "4.4.7-4.1",
                   "17d05997e30eb3d5d6713929b8e2f81b63a5f50073858ad2a06701c71f54dcdb"),
                   "public domain", False, "plain", rf"{_DOC}/jargon-text/jargon\.txt\.gz", "reference", "pool"),
    CatalogueEntry("linux_doc", _deb("linux-doc-6.1", "6.1.192-3",
                   "f18dfe28dcab7bdbf9185be16b9521f5841277a6a96c374a6683a648d5d5fa4f"),
                   "GPL-2", True, "rst",
                   # translations/ holds the Chinese, Japanese, Korean, Italian and Spanish versions: not English.
                   rf"{_DOC}/linux-doc-6\.1/html/_sources/(?!translations/).*\.rst\.txt", "reference", "pool"),
    CatalogueEntry("django_doc", _deb("python-django-doc", "3:3.2.25-0+deb12u7",
                   "87307f067916df72e17180d35b7cde5c7ea6080336cda518efd7f6e66988a7ca"),
                   "BSD-3-Clause", False, "html", rf"{_DOC}/python-django-doc/html/(?!_modules/).*\.html",
                   "reference", "pool", templated=True),
    CatalogueEntry("libreoffice_help", _deb("libreoffice-help-en-us", "4:7.4.7-1+deb12u14",
                   "8faa840285734d6cfe1ed25537b48f07e74bd6412e3917bf8e5f8a653f7b3712"),
                   "MPL-2.0", True, "html", r"usr/share/libreoffice/help/en-US/text/.*\.html", "reference", "pool",
                   templated=True),
    CatalogueEntry("manpages", _deb("manpages", "6.03-2",
                   "efa1ba4cd19ad7baeae959c9209a7eb74be2ebb858bcabb412597bfc9f588c91"),
                   "GPL-2+ and BSD and others (per page)", True, "troff", r"usr/share/man/man\d/.*\.gz",
                   "reference", "pool"),
    CatalogueEntry("manpages_dev", _deb("manpages-dev", "6.03-2",
                   "96f55cb5e26231d5567c89b692bced63825a14a2d5bd18fdf16ea2ed44eb9838"),
                   "GPL-2+ and BSD and others (per page)", True, "troff", r"usr/share/man/man\d/.*\.gz",
                   "reference", "pool"),
    # --- pool role: noisy (templated API reference, code-heavy, informal) ---
    CatalogueEntry("fortunes", _deb("fortunes", "1:1.99.1-7.3",
                   "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5"),
                   "BSD-4-Clause (collection); quotations of mixed origin", False, "fortunes",
                   r"usr/share/games/fortunes/[^./]+", "noisy", "pool"),
    CatalogueEntry("openjdk_doc", _deb("openjdk-17-doc", "17.0.21.1+2-1~deb12u1",
                   "3e04db24dbcb31d598774973998f1d8212e3424e288befbfef235077325f841d"),
                   "GPL-2 with Classpath exception", True, "html",
                   rf"{_DOC}/openjdk-17-jre-headless/api/(?!.*-(use|tree)\.html)(?!.*index-files/).*\.html",
                   "noisy", "pool", templated=True),
    CatalogueEntry("erlang_doc", _deb("erlang-doc", "1:25.2.3+dfsg-1+deb12u4",
                   "7d172cecfdd9c2930b27c776ad226ffcc84670375cf830c79ee41c6944e8a1c8"),
                   "Apache-2.0", False, "html", rf"{_DOC}/erlang-doc/.*\.html", "noisy", "pool", templated=True),
    CatalogueEntry("boost_doc", _deb("libboost1.81-doc", "1.81.0-5+deb12u1",
                   "da1e2182ea8955cf6155924066dd611588f855aebf961d0ea0e7ac0092216ebb"),
                   "BSL-1.0", False, "html", rf"{_DOC}/libboost1\.81-doc/.*\.html", "noisy", "pool", templated=True),
    CatalogueEntry("ghc_doc", _deb("ghc-doc", "9.0.2-4",
                   "a7c77e36c8906f82eef411ceeba13b7d663b7766a5ecc6659e3405889e0429c9"),
                   "BSD-3-Clause (GHC) and per-library licences", False, "html",
                   rf"{_DOC}/ghc-doc/html/(libraries|users_guide)/(?!.*src/).*\.html", "noisy", "pool",
                   templated=True),
    CatalogueEntry("sagemath_doc", _deb("sagemath-doc", "9.5-6",
                   "dae42f803878fe655dd4627b3ddaa74de82a737a6076527d3441e80018ab2b12"),
                   "GPL-2+", True, "html", rf"{_DOC}/sagemath/html/en/(?!.*_static/)(?!.*_modules/).*\.html",
                   "noisy", "pool", templated=True),
    # --- external domain: held out only, never in a training split ---
    CatalogueEntry("web_bible", _deb("sword-text-web", "426.0-1",
                   "930b23670b352f0829a306501de4bebb5e654a2df02cde2cbe86b802177868e1"),
                   "public domain", False, "sword_ztext", r"usr/share/sword/modules/texts/ztext/engWEB2015eb/.*\.bz[sz]",
                   "external", "external"),
)
CATALOGUE: dict[str, CatalogueEntry] = {entry.name: entry for entry in ENTRIES}

"""The pinned bigbench sdist (opt-in since PyPI deleted 1.0.0): a user's copy, verification, cache, pip
failures, the pip >= 26.3 fallback, member reads. The sdist itself is a fake in the real layout
(conftest.fake_bigbench)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from jest.evaluation import bigbench
from jest.evaluation.bigbench import PyPIPin
from jest.evaluation.errors import ChecksumMismatchError, MissingMemberError, SourceFetchError

GOOD = b"the real sdist bytes"
FAKE_PIN = PyPIPin("fakepkg", "1.0", hashlib.sha256(GOOD).hexdigest(), "fakepkg-1.0.tar.gz")


class FakePip:
    """Stands in for ``pip download``: records commands, writes ``payload[name]`` as the pin's file."""

    def __init__(self, payload: dict[str, bytes], returncode: int = 0, stderr: str = ""):
        self.payload, self.returncode, self.stderr = payload, returncode, stderr
        self.calls: list[tuple[list[str], str]] = []

    def __call__(self, pip, pin, destination, pypi_dir):
        self.calls.append((list(pip), pin.spec))
        if self.returncode == 0:
            (Path(destination) / pin.filename).write_bytes(self.payload[pin.name])
        return subprocess.CompletedProcess(pip, self.returncode, stdout="", stderr=self.stderr)


def test_local_copy_is_verified_then_cached(fake_bigbench: Path, tmp_path: Path):
    """evaluation.bigbench_sdist: the user's copy enters the cache only with the pinned sha256."""
    cached = bigbench.fetch_bigbench(tmp_path / "cache", fake_bigbench)
    assert cached == tmp_path / "cache" / "pypi" / bigbench.BIGBENCH.filename
    assert cached.read_bytes() == fake_bigbench.read_bytes()
    assert bigbench.fetch_bigbench(tmp_path / "cache") == cached  # from the cache now: no pip call
    with pytest.raises(SourceFetchError, match="is not a file"):
        bigbench.fetch_bigbench(tmp_path / "other", tmp_path / "nowhere.tar.gz")


def test_fetch_verifies_and_caches(tmp_path, monkeypatch):
    fake = FakePip({"fakepkg": GOOD})
    monkeypatch.setattr(bigbench, "_run_pip", fake)
    monkeypatch.setattr(bigbench, "_pip_version", lambda: (25, 0))
    path = bigbench.fetch(FAKE_PIN, tmp_path)
    assert path == tmp_path / "pypi" / FAKE_PIN.filename and path.read_bytes() == GOOD
    assert bigbench.fetch(FAKE_PIN, tmp_path) == path
    assert len(fake.calls) == 1
    assert [p.name for p in (tmp_path / "pypi").iterdir()] == [FAKE_PIN.filename]  # staging removed


def test_checksum_mismatch_names_expected_got_file_and_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(bigbench, "_run_pip", FakePip({"fakepkg": b"tampered"}))
    monkeypatch.setattr(bigbench, "_pip_version", lambda: (25, 0))
    with pytest.raises(ChecksumMismatchError) as info:
        bigbench.fetch(FAKE_PIN, tmp_path)
    message = str(info.value)
    assert FAKE_PIN.sha256 in message and hashlib.sha256(b"tampered").hexdigest() in message
    assert FAKE_PIN.filename in message and "Delete" in message
    assert list((tmp_path / "pypi").iterdir()) == []  # nothing unverified left behind


def test_corrupt_cached_file_is_fetched_again(tmp_path, monkeypatch):
    fake = FakePip({"fakepkg": GOOD})
    monkeypatch.setattr(bigbench, "_run_pip", fake)
    monkeypatch.setattr(bigbench, "_pip_version", lambda: (25, 0))
    (tmp_path / "pypi").mkdir()
    (tmp_path / "pypi" / FAKE_PIN.filename).write_bytes(b"truncated")
    assert bigbench.fetch(FAKE_PIN, tmp_path).read_bytes() == GOOD
    assert len(fake.calls) == 1


def test_pip_failure_names_package_and_what_to_do(tmp_path, monkeypatch):
    stderr = "ERROR: Could not find a version that satisfies the requirement fakepkg==1.0"
    monkeypatch.setattr(bigbench, "_run_pip", FakePip({}, returncode=1, stderr=stderr))
    monkeypatch.setattr(bigbench, "_pip_version", lambda: (25, 0))
    with pytest.raises(SourceFetchError) as info:
        bigbench.fetch(FAKE_PIN, tmp_path)
    message = str(info.value)
    assert "fakepkg==1.0" in message and stderr in message
    assert "Check access to PyPI" in message and FAKE_PIN.sha256 in message


def test_missing_python_is_a_fetch_error(tmp_path, monkeypatch):
    monkeypatch.setattr(bigbench.sys, "executable", str(tmp_path / "no-such-python"))
    monkeypatch.setattr(bigbench, "_pip_version", lambda: (25, 0))
    with pytest.raises(SourceFetchError, match="cannot run"):
        bigbench.fetch(FAKE_PIN, tmp_path)


def test_direct_url_refusal_falls_back_to_the_pinned_pip(tmp_path, monkeypatch):
    wheel = b"pip wheel bytes"
    monkeypatch.setattr(bigbench, "PIP_FALLBACK",
                        PyPIPin("pip", "26.2.1", hashlib.sha256(wheel).hexdigest(), "pip-26.2.1-py3-none-any.whl",
                                sdist=False))
    monkeypatch.setattr(bigbench, "_pip_version", lambda: (26, 2))  # not known to refuse: tried first
    refusal = ("ERROR: Distributions from PyPI cannot declare direct URL dependencies.\n"
               "fakepkg depends on bleurt @ file://localhost/x.zip")
    calls: list[tuple[list[str], str]] = []

    def fake(pip, pin, destination, pypi_dir):
        calls.append((list(pip), pin.spec))
        if pin.name == "fakepkg" and pip[1:2] == ["-m"]:
            return subprocess.CompletedProcess(pip, 1, stdout="", stderr=refusal)
        (Path(destination) / pin.filename).write_bytes(wheel if pin.name == "pip" else GOOD)
        return subprocess.CompletedProcess(pip, 0, stdout="", stderr="")

    monkeypatch.setattr(bigbench, "_run_pip", fake)
    assert bigbench.fetch(FAKE_PIN, tmp_path).read_bytes() == GOOD
    wheel_path = str(tmp_path / "pypi" / "pip-26.2.1-py3-none-any.whl" / "pip")
    assert [(c[0][1:], c[1]) for c in calls] == [
        (["-m", "pip"], "fakepkg==1.0"), (["-m", "pip"], "pip==26.2.1"), ([wheel_path], "fakepkg==1.0")]


def test_refusing_pip_goes_straight_to_the_fallback(tmp_path, monkeypatch):
    wheel = b"pip wheel bytes"
    monkeypatch.setattr(bigbench, "PIP_FALLBACK",
                        PyPIPin("pip", "26.2.1", hashlib.sha256(wheel).hexdigest(), "pip-26.2.1-py3-none-any.whl",
                                sdist=False))
    monkeypatch.setattr(bigbench, "_pip_version", lambda: (26, 3))
    fake = FakePip({"fakepkg": GOOD, "pip": wheel})
    monkeypatch.setattr(bigbench, "_run_pip", fake)
    bigbench.fetch(FAKE_PIN, tmp_path)
    assert [spec for _, spec in fake.calls] == ["pip==26.2.1", "fakepkg==1.0"]
    assert fake.calls[1][0][1].endswith("pip-26.2.1-py3-none-any.whl/pip")


def test_task_files_are_cached_verified_and_repaired(fake_bigbench: Path, tmp_path: Path):
    member = "discourse_marker_prediction/task.json"
    cache_dir = tmp_path / "cache"
    first = bigbench.task_files(cache_dir, [member], fake_bigbench)[member]
    assert json.loads(first)["name"] == "discourse_marker_prediction"
    cached = cache_dir / "pypi" / f"bigbench-{bigbench.BIGBENCH.version}" / member
    manifest = json.loads((cached.parents[1] / "members.json").read_text())
    assert manifest["sdist_sha256"] == bigbench.BIGBENCH.sha256
    assert manifest["members"][member] == hashlib.sha256(first).hexdigest()
    # A damaged cached copy is noticed and replaced from the verified sdist.
    cached.write_bytes(b"{}")
    assert bigbench.task_files(cache_dir, [member])[member] == first
    assert cached.read_bytes() == first


def test_unknown_member_and_bad_paths(cache_dir: Path, tmp_path: Path):
    tarball = tmp_path / "small.tar.gz"
    import io
    import tarfile

    with tarfile.open(tarball, "w:gz") as archive:
        info = tarfile.TarInfo("pkg/a.json")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"{}"))
    assert bigbench.read_members(tarball, ["pkg/a.json"]) == {"pkg/a.json": b"{}"}
    with pytest.raises(MissingMemberError, match="pkg/b.json"):
        bigbench.read_members(tarball, ["pkg/a.json", "pkg/b.json"])
    with pytest.raises(ValueError):
        bigbench.task_files(cache_dir, ["../../etc/passwd"])

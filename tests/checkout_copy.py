"""A copy of the checkout's tracked files (as they are in the working tree), for tests that run
the real DAG somewhere else: under a path with a space, or as a user's fresh checkout would."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from jest.config import PROJECT_ROOT


def copy_tracked_files(root: Path) -> None:
    """Every tracked file but results/ and tests/ copied under `root` (working-tree contents)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             check=True).stdout.split("\0")
    for rel in tracked:
        if rel and not rel.startswith(("results/", "tests/")) and (PROJECT_ROOT / rel).is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / rel, root / rel)

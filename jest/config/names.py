"""Names and paths that reach Snakemake's shell commands and the file system: what they may hold."""
from __future__ import annotations

import re

from jest.config.errors import ConfigError


# Names that become folder names and arguments of Snakemake's shell commands: the config
# `name`, arm and reference names. Paths (results_dir, cache_dir) appear in the same shell
# lines, so they may hold no whitespace, quotes or shell characters either.
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SAFE_PATH = "^[^\\s;&|$`\"'<>(){}\\[\\]*?!\\\\#~]+$"
_RULES = {SAFE_NAME: "letters, digits, '_', '.', '-', starting with a letter or digit; names become "
                     "folder names and arguments of Snakemake's shell commands, so no spaces, slashes or shell characters",
          SAFE_PATH: "a path with no whitespace, quotes, '~' or shell characters ;&|$`<>(){}[]*?!#\\, "
                     "because it appears in Snakemake's shell commands"}


def unsafe_message(key: str, value, pattern: str, is_key: bool = False) -> str:
    what = f"name {value!r} under '{key}'" if is_key else f"'{key}' = {value!r}"
    return f"{what} is not allowed; allowed pattern: {pattern} ({_RULES.get(pattern, 'see the schema')})"


def check_shell_safe(cfg: dict) -> None:
    """Full-string checks of every config string that reaches a shell command or a path.

    The schema's patterns say the same, but a JSON-schema pattern is a search, and `$` also
    matches before a trailing newline; here the whole string must match.
    """
    checks = [("name", cfg["name"], SAFE_NAME, False), ("results_dir", cfg["results_dir"], SAFE_PATH, False)]
    if cfg.get("cache_dir") is not None:
        checks.append(("cache_dir", cfg["cache_dir"], SAFE_PATH, False))
    checks += [(section, name, SAFE_NAME, True) for section in ("arms", "references") for name in cfg[section]]
    for key, value, pattern, is_key in checks:
        if not re.fullmatch(pattern[1:-1], value):
            raise ConfigError("invalid config:\n  " + unsafe_message(key, value, pattern, is_key))



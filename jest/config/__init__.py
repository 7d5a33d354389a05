"""Experiment config, the leaf every other package reads: the schema and its defaults
(jest.config.schema), names safe for shell commands (jest.config.names), paths and the config
hash (jest.config.paths), and the checks across keys (jest.config.checks). It imports no policy,
ladder or planning code: jest.experiment runs all passes of validation in order."""
from jest.config.errors import ConfigError
from jest.config.names import SAFE_NAME, SAFE_PATH
from jest.config.paths import (PROJECT_ROOT, SCHEMA_PATH, cache_root, config_hash, deep_merge, results_root,
                               section_hashes)
from jest.config.schema import check_finite, coerce_overrides, load_schema, read_config_file, schema_errors

__all__ = ["ConfigError", "PROJECT_ROOT", "SAFE_NAME", "SAFE_PATH", "SCHEMA_PATH", "cache_root", "check_finite",
           "coerce_overrides", "config_hash", "deep_merge", "load_schema", "read_config_file", "results_root",
           "schema_errors", "section_hashes"]

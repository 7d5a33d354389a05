"""The one error a config check raises."""


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key."""

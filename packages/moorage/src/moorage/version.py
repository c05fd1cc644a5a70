"""The version of moorage (the same as the distribution's, in pyproject.toml)."""

__version__ = "0.1.0"

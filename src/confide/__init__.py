"""confide: a confidential computing platform wire-compatible with Apache Teaclave 0.6."""

__all__ = ["__version__"]

#: The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.1.0"

"""confide: a confidential computing platform wire-compatible with Apache Teaclave 0.6."""

__all__ = ["__version__"]

__version__ = "0.1.0"

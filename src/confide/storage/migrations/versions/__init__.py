"""Revisions, one module each: ``vNNNN_<what>.py`` with ``revision = "NNNN"``."""

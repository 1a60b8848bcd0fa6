"""Execution workers: stage data, run a function in its executor, seal and upload outputs.

Subpackages: :mod:`confide.execution.file_agent` (fetching and storing task files).
"""

__all__: list[str] = []

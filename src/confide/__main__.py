"""``python -m confide`` is the ``confide`` command."""

from .cli import main

main()

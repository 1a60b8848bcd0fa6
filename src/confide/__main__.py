"""``python -m confide`` is the ``confide`` command."""

from .client.cli import main

main()

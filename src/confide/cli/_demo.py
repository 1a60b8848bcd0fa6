"""``confide demo``: start a throw-away server and walk a multi-party task through its life.

The scenario (``_demo_scenario``) and the server it starts are imported when the
command runs, so that every other command starts without loading the platform.
"""

from __future__ import annotations

import typer

from ._common import console

__all__ = ["demo"]


def demo() -> None:
    """Start a throw-away server and walk a multi-party task through its life."""
    from ._demo_scenario import run_demo

    raise typer.Exit(run_demo(console))

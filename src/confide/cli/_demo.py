"""``confide demo``: start a throw-away server and walk a multi-party task through its life.

The scenario (``_demo_scenario``) and the server it starts are imported when the
command runs, so that every other command starts without loading the platform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import console

__all__ = ["demo"]

SCENARIOS = ("join", "inference")


def demo(
    scenario: Annotated[str, typer.Option(
        "--scenario", help="join: two banks join encrypted lists; inference: a model owner, "
        "an engine owner and a business classify images (needs confide[inference])")] = "join",
    server: Annotated[Path | None, typer.Option(
        "--server", help="inference only: instead of starting a server, attest and use the "
        "running one whose trust files (confide serve's data dir) are in this directory; the "
        "administrator's password comes from CONFIDE_ADMIN_PASSWORD (default: teaclave)")
    ] = None,
    host: Annotated[str, typer.Option(envvar="CONFIDE_HOST")] = "localhost",
    authentication_port: Annotated[int, typer.Option(envvar="CONFIDE_AUTHENTICATION_PORT")
                                   ] = 7776,
    frontend_port: Annotated[int, typer.Option(envvar="CONFIDE_FRONTEND_PORT")] = 7777,
) -> None:
    """Start a throw-away server and walk a multi-party task through its life."""
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"must be one of {', '.join(SCENARIOS)}, not {scenario!r}",
                                 param_hint="--scenario")
    if scenario == "inference":
        from ._demo_inference import RunningServer, run_inference_demo

        running = None if server is None else RunningServer(server, host, authentication_port,
                                                              frontend_port)
        raise typer.Exit(run_inference_demo(console, running=running))
    if server is not None:
        raise typer.BadParameter("only the inference scenario runs on a running server",
                                 param_hint="--server")
    from ._demo_scenario import run_demo

    raise typer.Exit(run_demo(console))

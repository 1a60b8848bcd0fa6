"""``confide demo``: start a throw-away server and walk a multi-party task through its life.

The scenario (``_demo_scenario``) and the server it starts are imported when the
command runs, so that every other command starts without loading the platform.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import console

__all__ = ["demo"]

SCENARIOS = ("join", "inference")


def demo(scenario: Annotated[str, typer.Option(
        "--scenario", help="join: two banks join encrypted lists; inference: a model owner, "
        "an engine owner and a business classify images (needs confide[inference])")] = "join",
         ) -> None:
    """Start a throw-away server and walk a multi-party task through its life."""
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"must be one of {', '.join(SCENARIOS)}, not {scenario!r}",
                                 param_hint="--scenario")
    if scenario == "inference":
        from ._demo_inference import run_inference_demo

        raise typer.Exit(run_inference_demo(console))
    from ._demo_scenario import run_demo

    raise typer.Exit(run_demo(console))

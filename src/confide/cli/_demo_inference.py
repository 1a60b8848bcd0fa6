"""``confide demo --scenario inference``: three owners classify images on a throw-away server.

The flow itself is ``confide.inference.run_scenario`` (the SDK only); this
module starts the server, registers the parties as its administrator, prints
each step and then shows, party by party, what each one is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..client import Client, ClientError
from ..inference import (
    BUSINESS,
    ENGINE_OWNER,
    MODEL_OWNER,
    EngineRun,
    InferenceError,
    Party,
    register_parties,
    run_scenario,
)
from ._demo_scenario import demo_server

__all__ = ["run_inference_demo"]


def run_inference_demo(console: Console, data_dir: Path | None = None) -> int:
    """Run the inference scenario; 0 when the labels reached the business and equal a plain run."""
    step = iter(range(2, 100))

    def say(text: str) -> None:
        number = "  " if text.startswith(" ") else f"{next(step)}."
        console.print(f"{number} {escape(text)}")

    with demo_server(console, data_dir, "confide demo: confidential inference") as server:
        admin = server.connect("admin", "teaclave")
        register_parties(admin)
        say(f"the administrator (cloud A) registered {MODEL_OWNER.user_id} (model owner B), "
            f"{ENGINE_OWNER.user_id} (engine owner C) and {BUSINESS.user_id} (business D)")

        def connect_as(party: Party) -> Client:
            return server.connect(party.user_id, party.password)

        try:
            outcome = run_scenario(connect_as, say)
        except (InferenceError, ClientError) as e:
            console.print(f"[red]the scenario failed:[/] {escape(str(e))}")
            console.rule("[red]demo failed[/]")
            return 1
        ok = outcome.ok
        for i, run in enumerate(outcome.runs):
            denied = _refusals(connect_as, run)
            if i == 0:
                say("each party tries to see what is not its own:")
            for who, what, code in denied:
                if i == 0:
                    console.print(f"   {who} cannot {what}: [red]{escape(code)}[/]")
                if code == "ALLOWED":
                    console.print(f"   [red]{escape(run.engine)}: {who} could {what}[/]")
            ok = ok and all(code != "ALLOWED" for _who, _what, code in denied)
        console.print("accuracy on the business's images, against their true labels:")
        for run in outcome.runs:
            console.print(f"   {run.engine:5} {run.accuracy:.1%} "
                          f"({'=' if run.matches_plain else '≠'} plain local run)")
    console.rule("[green]demo finished[/]" if ok else "[red]demo failed[/]")
    return 0 if ok else 1


def _refusals(login: Callable[[Party], Client], run: EngineRun) -> list[tuple[str, str, str]]:
    """What each party tries beyond its share, and the status it gets ("ALLOWED" if not refused)."""
    model_id, images_id, labels_id = run.model_id, run.images_id, run.labels_id
    attempts: list[tuple[Party, str, Callable[[Client], object]]] = [
        (MODEL_OWNER, "see the business's images", lambda c: c.get_input_file(images_id)),
        (MODEL_OWNER, "see the labels", lambda c: c.get_output_file(labels_id)),
        (BUSINESS, "see the model", lambda c: c.get_input_file(model_id)),
        (ENGINE_OWNER, "see the model", lambda c: c.get_input_file(model_id)),
        (ENGINE_OWNER, "see the images", lambda c: c.get_input_file(images_id)),
        (ENGINE_OWNER, "see the labels", lambda c: c.get_output_file(labels_id)),
    ]
    out = []
    for party, what, attempt in attempts:
        with login(party) as client:
            try:
                attempt(client)
                code = "ALLOWED"
            except ClientError as e:
                code = e.code
        out.append((party.user_id, what, code))
    with login(BUSINESS) as client:
        payload = client.get_function(run.function_id).payload
    out.append((BUSINESS.user_id, "read the engine's code",
                "ALLOWED" if payload else "code withheld (SHA-256 only)"))
    return out

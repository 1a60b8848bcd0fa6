"""``confide demo --scenario inference``: three owners classify images.

The flow itself is ``confide.inference.run_scenario`` (the SDK only); this
module provides a server -- a throw-away all-in-one one, or a running
deployment given by its trust files (``--server DIR``) -- registers the parties
as its administrator, prints each step and then shows, party by party, what
each one is refused.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..client import Client, ClientError, ServerAttestationError
from ..inference import (
    EngineRun,
    InferenceError,
    Parties,
    Party,
    register_parties,
    run_scenario,
)
from ._demo_scenario import demo_server

__all__ = ["RunningServer", "run_inference_demo"]

Connect = Callable[[str, str], Client]


@dataclass(frozen=True)
class RunningServer:
    """A deployment that already runs: its trust files and its API endpoints."""

    data_dir: Path
    host: str
    authentication_port: int
    frontend_port: int

    def connect(self, user: str, password: str) -> Client:
        """Attest the server (as ``confide user login`` does), then log in."""
        c = Client.connect_data_dir(self.data_dir, self.host,
                                    authentication_port=self.authentication_port,
                                    frontend_port=self.frontend_port)
        c.login(user, password)
        return c


def run_inference_demo(console: Console, data_dir: Path | None = None,
                       running: RunningServer | None = None) -> int:
    """Run the inference scenario; 0 when the labels reached the business, equal a plain
    run, and every party was refused what is not its own."""
    try:
        with _server(console, data_dir, running) as (connect, admin_password, parties):
            return _walk(console, connect, admin_password, parties)
    except (InferenceError, ClientError, ServerAttestationError) as e:
        console.print(f"[red]the scenario failed:[/] {escape(str(e))}")
        console.rule("[red]demo failed[/]")
        return 1


@contextmanager
def _server(console: Console, data_dir: Path | None, running: RunningServer | None
            ) -> Iterator[tuple[Connect, str, Parties]]:
    if running is None:
        with demo_server(console, data_dir, "confide demo: confidential inference") as server:
            yield server.connect, "teaclave", Parties()
        return
    console.rule("[bold]confide demo: confidential inference[/bold]")
    console.print(f"1. using the running server at {running.host}:{running.frontend_port}, "
                  f"attested with the trust files in {running.data_dir}")
    # Users of their own, so that the demo can run again on the same server.
    yield (running.connect, os.environ.get("CONFIDE_ADMIN_PASSWORD", "teaclave"),
           Parties.named(secrets.token_hex(4), secrets.token_urlsafe(16)))


def _walk(console: Console, connect: Connect, admin_password: str, parties: Parties) -> int:
    step = iter(range(2, 100))

    def say(text: str) -> None:
        number = "  " if text.startswith(" ") else f"{next(step)}."
        console.print(f"{number} {escape(text)}")

    with connect("admin", admin_password) as admin:
        register_parties(admin, parties)
    b, c, d = parties
    say(f"the administrator (cloud A) registered {b.user_id} (model owner B), "
        f"{c.user_id} (engine owner C) and {d.user_id} (business D)")

    def connect_as(party: Party) -> Client:
        return connect(party.user_id, party.password)

    outcome = run_scenario(connect_as, say, parties=parties)
    ok = outcome.ok
    for i, run in enumerate(outcome.runs):
        denied = _refusals(connect_as, run, parties)
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


def _refusals(login: Callable[[Party], Client], run: EngineRun, parties: Parties
              ) -> list[tuple[str, str, str]]:
    """What each party tries beyond its share, and the status it gets ("ALLOWED" if not refused)."""
    model_id, images_id, labels_id = run.model_id, run.images_id, run.labels_id
    b, c, d = parties
    attempts: list[tuple[Party, str, Callable[[Client], object]]] = [
        (b, "see the business's images", lambda x: x.get_input_file(images_id)),
        (b, "see the labels", lambda x: x.get_output_file(labels_id)),
        (d, "see the model", lambda x: x.get_input_file(model_id)),
        (c, "see the model", lambda x: x.get_input_file(model_id)),
        (c, "see the images", lambda x: x.get_input_file(images_id)),
        (c, "see the labels", lambda x: x.get_output_file(labels_id)),
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
    with login(d) as client:
        payload = client.get_function(run.function_id).payload
    out.append((d.user_id, "read the engine's code",
                "ALLOWED" if payload else "code withheld (SHA-256 only)"))
    return out

"""``confide console``: serve the profile's local web console on 127.0.0.1.

This process is the attested client (the profile's session, as every client
command); the browser talks only to it, with the per-launch secret in the URL
printed here (``confide.console``). The console's file keys are the profile's
(``_keystore``), so ``confide file download`` reads what the console uploaded.
"""

from __future__ import annotations

import webbrowser
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import run, session_client
from ._input import UsageError
from ._keystore import LocalFile, load_file, local_files, save_file
from ._session import active_profile

if TYPE_CHECKING:
    from ..console import Console, KeptFile

__all__ = ["console"]


class _ProfileKeys:
    """The profile's key store, as the console's ``Keyring``."""

    def save(self, entry: KeptFile) -> None:
        save_file(LocalFile(entry.data_id, entry.kind, entry.name, entry.url, entry.get_url,
                            entry.schema, entry.key.hex(), entry.iv.hex(), entry.cmac.hex(),
                            entry.size))

    def load(self, data_id: str) -> KeptFile:
        try:
            return _kept(load_file(data_id))
        except UsageError:
            raise KeyError(data_id) from None

    def entries(self) -> list[KeptFile]:
        return [_kept(e) for e in local_files()]


def _kept(e: LocalFile) -> KeptFile:
    from ..console import KeptFile

    return KeptFile(e.data_id, e.kind, e.name, e.url, e.get_url, e.schema,
                    bytes.fromhex(e.key), bytes.fromhex(e.iv), bytes.fromhex(e.cmac), e.size)


def console(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 0,
    open_browser: Annotated[bool, typer.Option(
        "--open/--no-open", help="Open the console in the default browser.")] = False,
) -> None:
    """A local web console for this profile: approvals, tasks, files, audit.

    Serves on 127.0.0.1 only and prints the URL to open (it carries a secret of
    this launch: anyone with it acts as you until the console stops). Ctrl-C stops it.
    """
    from ..console import Console

    def start() -> Console:
        if not 0 <= port <= 65535:
            raise UsageError("--port must be 0..65535")
        client = session_client()
        try:
            return Console(client, _ProfileKeys(), profile=active_profile(), port=port)
        except OSError as e:
            client.close()
            raise UsageError(f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}") from e

    app = run(start)
    typer.echo(f"confide console for {app.user} (profile {app.profile}):")
    typer.echo(f"  {app.guard.login_url}")
    typer.echo("The URL is your key to the console: do not share it. Ctrl-C stops the console.")
    if open_browser:
        webbrowser.open(app.guard.login_url)
    try:
        app.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.httpd.server_close()
        app.client.close()

"""``confide console``: a local web console for data owners and function owners.

The console process is the attested client (the SDK with the user's profile);
the browser talks only to it, on 127.0.0.1, with a per-launch secret
(``_guard``). Pages: tasks awaiting my approval with their review, my tasks
with live state, my files (upload, download), the audit entries I may see.
"""

from ._app import Console, HttpError
from ._guard import Guard, Refusal, Session
from ._keyring import KeptFile, Keyring

__all__ = ["Console", "Guard", "HttpError", "KeptFile", "Keyring", "Refusal", "Session"]

"""The frontend's order of business for every call: authenticate → authorize →
forward → audit (spec §1.7, §3.2, §3.8).

Pure Python: the gRPC servicer only converts messages and calls :meth:`run`.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ...errors import Code, ServiceError
from ...storage import StorageError
from .._identity import Principal
from .._outage import storage_failure
from ..access_control import AccessControl
from ..audit import AuditLog, Subjects
from ..authentication import AuthenticationService

__all__ = ["Frontend", "peer_ip"]

T = TypeVar("T")


def peer_ip(peer: str) -> bytes:
    """grpc's ``context.peer()`` → 16 bytes; IPv4 as IPv4-compatible ``::a.b.c.d``.

    grpc writes IPv6 peers URI-escaped (``ipv6:%5B::1%5D:port``).
    """
    peer = urllib.parse.unquote(peer)
    try:
        if peer.startswith("ipv4:"):
            v4 = ipaddress.IPv4Address(peer[5:].rsplit(":", 1)[0])
            return b"\0" * 12 + v4.packed
        if peer.startswith("ipv6:"):
            host = peer[5:].rsplit(":", 1)[0].strip("[]")
            v6 = ipaddress.IPv6Address(host.split("%")[0])
            if v6.ipv4_mapped is not None:
                return b"\0" * 12 + v6.ipv4_mapped.packed
            return v6.packed
    except ValueError:
        pass
    return b"\0" * 16


def _render(e: ServiceError) -> str:
    name = "".join(w.capitalize() for w in e.code.name.split("_"))
    return f'status: {name}, message: "{e.message}"'


class Frontend:
    def __init__(self, auth: AuthenticationService, acl: AccessControl, audit: AuditLog) -> None:
        self._auth = auth
        self._acl = acl
        self._audit = audit

    def run(self, api: str, user_id: str | None, token: str | None, ip: bytes,
            forward: Callable[[Principal], T], about: Subjects | None = None,
            created: str | None = None) -> T:
        """Run ``forward`` for an authenticated, authorized caller, auditing the outcome.

        The entry records ``about`` (the ids the request names) and, when
        ``created`` is "task", "function" or "file", the id ``forward`` returned.
        """
        who = self._admit(api, user_id, token, ip)
        outcome = _Outcome(about or Subjects(), created)
        with self._audited(api, who, ip, outcome):
            return outcome.note(forward(who))

    async def run_async(self, api: str, user_id: str | None, token: str | None, ip: bytes,
                        forward: Callable[[Principal, Callable[[], None]], Awaitable[T]],
                        about: Subjects | None = None) -> T:
        """:meth:`run` for a ``forward`` that awaits (it runs on the RPC event loop).

        Authentication and the audit entry touch the database: through
        ``Database.run`` (in place on SQLite; on PostgreSQL in a greenlet parked
        on its round trips and on the audit group commit, ``confide._suspend``).
        ``forward(who, record)`` may call ``record()`` in its last hop to the
        database, to write the success entry there instead of in a hop of its own.
        """
        run = self._audit.db.run
        who = self._admit_cached(api, user_id, token)
        if who is None:  # not cached, or refused: the refusal is audited there
            who = await run(self._admit, api, user_id, token, ip)
        subjects = about or Subjects()
        user = f"{{ user: {who.user_id}, role: {who.role.debug()} }}"
        recorded = False

        def record() -> None:
            nonlocal recorded
            recorded = True  # set first: a failure to write it is not written again
            self._record(user, api, True, ip, who.user_id, subjects)

        try:
            result = await forward(who, record)
        except (ServiceError, StorageError) as e:
            if recorded:
                raise
            error = _failure(e, api)
            await run(self._record, user, f"{api}:{_render(error)}", False, ip, who.user_id,
                      subjects)
            raise error from (None if error is e else e)
        if not recorded:
            await run(record)
        return result

    def _admit_cached(self, api: str, user_id: str | None, token: str | None
                      ) -> Principal | None:
        """:meth:`_admit` for a caller whose user record is cached, on the event loop
        (no database hop); ``None`` for everything else, which :meth:`_admit`
        decides (and audits, when it refuses)."""
        if not user_id or not token:
            return None
        try:
            who = self._auth.authenticate_cached(user_id, token)
        except ServiceError:
            return None
        if who is None or not self._acl.authorize_api(who.role.api_role, api):
            return None
        return who

    def _admit(self, api: str, user_id: str | None, token: str | None, ip: bytes) -> Principal:
        """Authenticate and authorize the caller; audit a refusal."""
        if not user_id:
            self._record("", f"authenticate to {api}: missing user id", False, ip)
            raise ServiceError(Code.UNAUTHENTICATED, "missing user id")
        if not token:
            self._record("", f"authenticate to {api}: missing token", False, ip)
            raise ServiceError(Code.UNAUTHENTICATED, "missing token")
        try:
            who = self._auth.authenticate(user_id, token)
        except ServiceError as e:
            if e.code in (Code.UNAVAILABLE, Code.RESOURCE_EXHAUSTED):  # an outage, not a refusal
                raise
            self._record("", f"authenticate to {api}: incorrent credential", False, ip)
            raise ServiceError(Code.UNAUTHENTICATED, "incorrent credential") from e
        if not self._acl.authorize_api(who.role.api_role, api):
            self._record("", f"authenticate to {api}", False, ip)
            raise ServiceError.permission_denied()
        return who

    @contextmanager
    def _audited(self, api: str, who: Principal, ip: bytes, outcome: _Outcome
                 ) -> Iterator[None]:
        """Audit the outcome of the forwarded call; storage failures become INTERNAL."""
        user = f"{{ user: {who.user_id}, role: {who.role.debug()} }}"
        try:
            yield
        except ServiceError as e:
            self._record(user, f"{api}:{_render(e)}", False, ip, who.user_id, outcome.subjects)
            raise
        except StorageError as e:
            error = storage_failure(e, api)
            self._record(user, f"{api}:{_render(error)}", False, ip, who.user_id,
                         outcome.subjects)
            raise error from e
        self._record(user, api, True, ip, who.user_id, outcome.subjects)

    def _record(self, user: str, message: str, result: bool, ip: bytes, actor: str = "",
                subjects: Subjects | None = None) -> None:
        try:
            self._audit.append(user=user, message=message, result=result, ip=ip, actor=actor,
                               subjects=subjects)
        except StorageError as e:  # the outage that failed the call fails its audit entry too
            raise storage_failure(e, "the audit log") from e


def _failure(e: ServiceError | StorageError, api: str) -> ServiceError:
    """The error a failed call answers: its own, or the storage outage's status."""
    return e if isinstance(e, ServiceError) else storage_failure(e, api)


class _Outcome:
    """The subjects of one call: those the request named, plus the id it created."""

    def __init__(self, about: Subjects, created: str | None) -> None:
        self.subjects = about
        self._created = created

    def note(self, result: T) -> T:
        if self._created is not None and isinstance(result, str):
            s = self.subjects
            self.subjects = Subjects.of(
                tasks=(*s.tasks, *([result] if self._created == "task" else [])),
                functions=(*s.functions, *([result] if self._created == "function" else [])),
                files=(*s.files, *([result] if self._created == "file" else [])))
        return result

"""User accounts, passwords and tokens (spec §3.3).

Every error is UNAUTHENTICATED (16) with Teaclave's message, as the SDK and
Teaclave's tests expect, except the refusal of a new name that breaks the
naming rules (``_names``): INVALID_ARGUMENT (3) naming the rule. Authorization
uses the role *stored* for the user, not the one in the token (spec Q15 fix),
and tokens are revoked whenever a user's credentials change (see ``_tokens``).
Logins are throttled per user id and per address (``_throttle``) and audited.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

from ...config import Limits
from ...errors import Code, ServiceError
from ...storage import (
    Conflict,
    Database,
    Row,
    StorageError,
    StorageFull,
    StorageUnavailable,
    Txn,
)
from ...telemetry._metrics import LOGIN_FAILURES
from .._identity import Principal, Role, RoleKind, parse_role, role_from_request
from .._names import name_key, name_problem
from .._outage import storage_failure
from ..audit import AuditChainBroken, AuditLog
from ._shared_failures import ThrottleUnavailable
from ._throttle import LoginThrottle, Throttled, address_key
from ._tokens import Claims, TokenError, TokenSigner
from ._user_names import Claim, claim, index_existing_users, release

__all__ = ["AuthenticationService"]

_log = logging.getLogger(__name__)
_TABLE = "users"


def _auth_error(message: str) -> ServiceError:
    return ServiceError(Code.UNAUTHENTICATED, message)


def _check_new_name(what: str, name: str, limits: Limits) -> None:
    """INVALID_ARGUMENT naming the rule a new user id or attribute breaks."""
    problem = name_problem(name, limits.max_id_chars)
    if problem is not None:
        raise ServiceError(Code.INVALID_ARGUMENT, f"invalid {what}: {problem}")


_CASE_TAKEN = ("invalid user id: another user id differs from it only in letter case or "
               "compatibility form (user ids are unique ignoring case)")


_FAILED = "authentication failed"
#: How long another node's change to a user (delete, password, role) may take
#: to reach this node's token checks.
CACHE_TTL_S = 1.0


class AuthenticationService:
    """Users and sessions. ``clock`` returns seconds since the epoch.

    Logins are recorded in ``audit`` and throttled by ``throttle`` (by default
    one on ``time.monotonic`` with the thresholds of ``limits``).
    """

    def __init__(
        self,
        db: Database,
        tokens: TokenSigner,
        *,
        clock: Callable[[], float],
        limits: Limits,
        audit: AuditLog,
        hasher: PasswordHasher | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._db = db
        self._tokens = tokens
        self._clock = clock
        self._limits = limits
        self._audit = audit
        self._throttle = throttle or LoginThrottle(limits, time.monotonic)
        # OWASP's minimum argon2id profile: 19 MiB, t=2, p=1 (~15 ms here).
        self._hasher = hasher or PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
        # user id -> (stored record, time read). Every frontend call authenticates,
        # so records are cached briefly; this node's own writes invalidate at once,
        # another node's become visible within CACHE_TTL_S.
        self._cache: dict[str, tuple[dict[str, object], float]] = {}
        self._cache_lock = threading.Lock()

    # -- helpers -----------------------------------------------------------
    def _cached(self, user_id: str, now: float) -> dict[str, object] | None:
        """The cached record of ``user_id`` if it is fresh (no database access)."""
        with self._cache_lock:
            hit = self._cache.get(user_id)
        if hit is not None and now - hit[1] < CACHE_TTL_S:
            return hit[0]
        return None

    def _load_cached(self, user_id: str) -> dict[str, object] | None:
        now = time.monotonic()
        hit = self._cached(user_id, now)
        if hit is not None:
            return hit
        record = self._load(user_id)
        with self._cache_lock:
            if record is None:
                self._cache.pop(user_id, None)
            else:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[user_id] = (record, now)
        return record

    def _forget(self, user_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(user_id, None)

    def _load(self, user_id: str) -> dict[str, object] | None:
        try:
            with self._db.read() as txn:
                row = txn.get(_TABLE, user_id)
        except (StorageUnavailable, StorageFull) as e:
            raise storage_failure(e, "authentication") from e
        except StorageError as e:
            raise _auth_error("service internal error") from e
        return None if row is None else row.body

    def _hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def _check_lengths(self, user_id: str, password: str = "") -> None:
        if len(user_id) > self._limits.max_id_chars:
            raise _auth_error("invalid user id")
        if len(password) > self._limits.max_password_chars:
            raise _auth_error("invalid password")

    # -- bootstrap ---------------------------------------------------------
    def index_user_names(self) -> int:
        """Index existing users by case-insensitive name (every start, before
        :meth:`ensure_admin`); returns the number of names added."""
        try:
            return index_existing_users(self._db)
        except StorageError as e:
            raise _auth_error("service internal error") from e

    def ensure_admin(self, user_id: str, password: str) -> bool:
        """Create the PlatformAdmin ``user_id`` if it does not exist (every start).

        Raises:
            ValueError: ``user_id`` breaks the naming rules.
        """
        problem = name_problem(user_id, self._limits.max_id_chars) if user_id else "empty"
        with self._db.write() as txn:
            if txn.get(_TABLE, user_id) is not None:
                return False
            if problem is not None:
                raise ValueError(f"invalid administrator user id {user_id!r}: {problem}")
            # The operator names the administrator: it may share its name with a
            # user created before the naming rules (Teaclave re-creates `admin`).
            claim(txn, user_id, allow_shared=True)
            txn.insert(_TABLE, user_id, {"hash": self._hash(password),
                                         "role": Role(RoleKind.PLATFORM_ADMIN).canonical, "gen": 0})
        _log.info("created platform administrator %r", user_id)
        return True

    # -- sessions ----------------------------------------------------------
    def login(self, user_id: str, password: str, *, ip: bytes) -> str:
        """A session token; throttled per user id and per address, and audited.

        ``ip`` is the caller's address in the audit log's 16-byte form.
        """
        if not user_id or not password or len(user_id) > self._limits.max_id_chars \
                or len(password) > self._limits.max_password_chars:
            # Never a guess (it cannot succeed): audited, not counted by the throttle.
            LOGIN_FAILURES.labels("malformed").inc()
            self._record_login("", "authentication failed (empty or oversized user id or "
                               "password)", ip)
            raise _auth_error(_FAILED)
        try:
            attempt = self._throttle.admit(name_key(user_id).encode(), address_key(ip))
        except Throttled as e:
            LOGIN_FAILURES.labels("throttled").inc()
            known = self._load_cached(user_id) is not None
            self._record_login("", f"throttled for {self._audit_target(user_id)}: {e}", ip,
                               actor=user_id if known else "")
            raise _auth_error(f"{_FAILED}: {e}") from e
        except ThrottleUnavailable as e:
            # Fail closed: without the shared counts a guess could not be counted.
            LOGIN_FAILURES.labels("throttle_unavailable").inc()
            _log.error("login refused: %s", e)
            raise ServiceError(Code.UNAVAILABLE, "login throttle unavailable: the failed-login "
                               "counts cannot be read from the database; retry later").with_detail(
                "STORAGE_UNAVAILABLE", hint="a retry may succeed once the database is back") \
                from e
        with attempt:
            record = self._load(user_id)
            if record is None:
                # The same work as a real check, so ids cannot be probed by timing.
                self._dummy_verify(password)
            if record is None or not self._verify(str(record["hash"]), password):
                attempt.failed()
                LOGIN_FAILURES.labels("unknown_user" if record is None else "bad_password").inc()
                target = "an unknown user id" if record is None else f"{user_id!r}"
                self._record_login("", f"authentication failed for {target}", ip,
                                   actor="" if record is None else user_id)
                raise _auth_error(_FAILED)
            attempt.succeeded()
        role = parse_role(str(record["role"]))
        self._record_login(f"{{ user: {user_id}, role: {role.debug()} }}", None, ip,
                           actor=user_id)
        return self._tokens.issue(user_id, str(record["role"]), int(str(record["gen"])),
                                  now=self._clock())

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            self._hasher.verify(stored_hash, password)
        except (Argon2Error, InvalidHashError):
            return False
        return True

    def _audit_target(self, user_id: str) -> str:
        """How an audit entry names a login's user id: never an unknown one,
        which may be a password typed into the wrong field."""
        return f"{user_id!r}" if self._load_cached(user_id) is not None else "an unknown user id"

    def _record_login(self, user: str, failure: str | None, ip: bytes, *,
                      actor: str = "") -> None:
        """Audit a login: ``failure`` is None on success; ``actor`` the known account it named
        (the entry is then that user's to see)."""
        message = "user_login" if failure is None else f"user_login: {failure}"
        try:
            self._audit.append(user=user, message=message, result=failure is None, ip=ip,
                               actor=actor)
        except (StorageError, AuditChainBroken) as e:
            _log.error("cannot audit a login: %s", e)
            raise _auth_error("service internal error") from e

    def _dummy_verify(self, password: str) -> None:
        try:
            self._hasher.verify(_DUMMY_HASH.get(self._hasher), password)
        except (Argon2Error, InvalidHashError):
            pass

    def authenticate(self, user_id: str, token: str) -> Principal:
        """Validate ``token`` for ``user_id``; the principal carries the stored role."""
        claims = self._claims(user_id, token)
        record = self._load_cached(user_id)
        if record is None or record.get("gen") != claims.gen:
            raise _auth_error(_FAILED)
        return Principal(user_id, parse_role(str(record["role"])))

    def authenticate_cached(self, user_id: str, token: str) -> Principal | None:
        """:meth:`authenticate` without touching the database: the principal when
        the token verifies against the user's cached record, ``None`` when the
        record is not cached (call :meth:`authenticate`). Raises as it does for
        a token that does not verify or whose generation is not the cached one."""
        claims = self._claims(user_id, token)
        record = self._cached(user_id, time.monotonic())
        if record is None:
            return None
        if record.get("gen") != claims.gen:
            raise _auth_error(_FAILED)
        return Principal(user_id, parse_role(str(record["role"])))

    def _claims(self, user_id: str, token: str) -> Claims:
        if not user_id or not token or len(user_id) > self._limits.max_id_chars \
                or len(token) > 8192:
            raise _auth_error(_FAILED)
        try:
            return self._tokens.verify(token, user_id, now=self._clock())
        except TokenError as e:
            raise _auth_error(_FAILED) from e

    def role_of(self, user_id: str) -> Role | None:
        """The stored role of ``user_id``, or None if there is no such user."""
        record = self._load_cached(user_id)
        return None if record is None else parse_role(str(record["role"]))

    # -- account management -----------------------------------------------
    def register(self, caller: Principal, user_id: str, password: str, role: str,
                 attribute: str) -> None:
        """Teaclave's order of checks (spec §3.3); a new id and a new data
        owner's attribute must also follow the naming rules (``_names``)."""
        if not user_id:
            raise _auth_error("invalid user id")
        _check_new_name("user id", user_id, self._limits)
        if len(password) > self._limits.max_password_chars:
            raise _auth_error("invalid password")
        try:
            with self._db.write() as txn:
                taken = claim(txn, user_id)
                if taken is Claim.TAKEN_EXACTLY:
                    raise _auth_error("user id exist")
                if taken is Claim.TAKEN_IGNORING_CASE:
                    raise ServiceError(Code.INVALID_ARGUMENT, _CASE_TAKEN)
                new_role = self._requested_role(role, attribute, current=None)
                if not _may_register(caller.role, new_role):
                    raise _auth_error("permission denied")
                txn.insert(_TABLE, user_id, {"hash": self._hash(password),
                                             "role": new_role.canonical, "gen": 0})
        except Conflict as e:  # a concurrent registration took the name first
            if self._load(user_id) is not None:
                raise _auth_error("user id exist") from e
            raise ServiceError(Code.INVALID_ARGUMENT, _CASE_TAKEN) from e

    def _requested_role(self, role: str, attribute: str, *, current: Role | None) -> Role:
        """The role of a register/update request; a data owner's attribute that
        differs from ``current``'s must follow the naming rules."""
        new_role = role_from_request(role, attribute)
        if new_role is None:
            raise _auth_error("invalid role")
        if not new_role.is_data_owner_like:
            if len(attribute) > self._limits.max_id_chars:  # ignored, but bounded
                raise _auth_error("invalid role")
        elif attribute and (current is None or attribute != current.attribute):
            _check_new_name("attribute", attribute, self._limits)
        return new_role

    def update(self, caller: Principal, user_id: str, password: str, role: str,
               attribute: str) -> None:
        self._check_lengths(user_id, password)
        if not user_id:
            raise _auth_error("invalid user id")
        with self._db.write() as txn:
            row = txn.get(_TABLE, user_id, lock=True)
            if row is None:
                raise _auth_error("invalid user id")
            target = parse_role(str(row.body["role"]))
            new_role = self._requested_role(role, attribute, current=target)
            if not _may_update(caller.role, target, new_role):
                raise _auth_error("permission denied")
            # Other fields (a registered signing key) are kept.
            txn.update(_TABLE, user_id, {**row.body, "hash": self._hash(password),
                                         "role": new_role.canonical,
                                         "gen": int(str(row.body["gen"])) + 1})
        self._forget(user_id)

    def change_password(self, caller: Principal, password: str) -> None:
        if not password or len(password) > self._limits.max_password_chars:
            raise _auth_error(_FAILED)
        with self._db.write() as txn:
            row = txn.get(_TABLE, caller.user_id, lock=True)
            if row is None:
                raise _auth_error(_FAILED)
            # The stored role is kept (spec Q15 fix); old sessions are revoked.
            txn.update(_TABLE, caller.user_id, {**row.body, "hash": self._hash(password),
                                                "gen": int(str(row.body["gen"])) + 1})
        self._forget(caller.user_id)

    def _managed_row(self, txn: Txn, caller: Principal, user_id: str) -> Row:
        """The row of a user ``caller`` may reset or delete (spec §3.3)."""
        row = txn.get(_TABLE, user_id, lock=True)
        # An unknown id answers like a foreign one: no user enumeration (Q27).
        if row is None or not _may_manage(caller.role, parse_role(str(row.body["role"]))):
            raise _auth_error("permission denied")
        return row

    def reset_password(self, caller: Principal, user_id: str) -> str:
        self._check_lengths(user_id)
        if not user_id:
            raise _auth_error("invalid user id")
        with self._db.write() as txn:
            row = self._managed_row(txn, caller, user_id)
            new_password = uuid.uuid4().hex
            txn.update(_TABLE, user_id, {**row.body, "hash": self._hash(new_password),
                                         "gen": int(str(row.body["gen"])) + 1})
        self._forget(user_id)
        return new_password

    def delete(self, caller: Principal, user_id: str) -> None:
        self._check_lengths(user_id)
        if not user_id:
            raise _auth_error("invalid user id")
        with self._db.write() as txn:
            self._managed_row(txn, caller, user_id)
            txn.delete(_TABLE, user_id)
            release(txn, user_id)
        self._forget(user_id)

    def list_users(self, caller: Principal, user_id: str) -> list[str]:
        self._check_lengths(user_id)
        if not user_id:
            raise _auth_error("invalid user id")
        role = caller.role
        if role.kind is RoleKind.PLATFORM_ADMIN:
            wanted: Callable[[Role], bool] = lambda _r: True  # noqa: E731
        elif role.kind is RoleKind.DATA_OWNER_MANAGER and user_id == role.attribute:
            wanted = lambda r: r == Role(RoleKind.DATA_OWNER, role.attribute)  # noqa: E731
        else:
            raise _auth_error("permission denied")
        with self._db.read() as txn:
            ids = [row.id for row in txn.scan(_TABLE) if wanted(parse_role(str(row.body["role"])))]
        return sorted(ids, key=lambda i: i.encode())


class _DummyHash:
    """A hash of a random password, made once per hasher, for timing-safe misses."""

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def get(self, hasher: PasswordHasher) -> str:
        key = id(hasher)
        if key not in self._cache:
            self._cache[key] = hasher.hash(uuid.uuid4().hex)
        return self._cache[key]


_DUMMY_HASH = _DummyHash()


def _may_register(caller: Role, new: Role) -> bool:
    if caller.kind is RoleKind.PLATFORM_ADMIN:
        return True
    if caller.kind is RoleKind.FUNCTION_OWNER:
        return new.kind is RoleKind.DATA_OWNER_MANAGER
    if caller.kind is RoleKind.DATA_OWNER_MANAGER:
        return new == Role(RoleKind.DATA_OWNER, caller.attribute)
    return False


def _may_update(caller: Role, target: Role, new: Role) -> bool:
    if caller.kind is RoleKind.PLATFORM_ADMIN:
        return True
    if caller.kind is RoleKind.DATA_OWNER_MANAGER:
        own = Role(RoleKind.DATA_OWNER, caller.attribute)
        # Q14 fix: the target must already be one of the manager's data owners.
        return new == own and target == own
    return False


def _may_manage(caller: Role, target: Role) -> bool:
    """Reset password / delete."""
    if caller.kind is RoleKind.PLATFORM_ADMIN:
        return True
    if caller.kind is RoleKind.DATA_OWNER_MANAGER:
        return target == Role(RoleKind.DATA_OWNER, caller.attribute)
    return False

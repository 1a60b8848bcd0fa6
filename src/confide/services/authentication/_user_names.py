"""The case-insensitive index of user ids (table ``user_names``).

A row per :func:`~confide.services._names.name_key`; its primary key is what
makes two registrations of ``admin`` and ``ADMIN`` impossible, even on two
nodes at once: the second insert of the same key fails in the database
(:class:`~confide.storage.Conflict`), whichever check ran first. The row lists
the user ids with that key: one, except for users created before the rule,
who keep working and keep their names taken.
"""

from __future__ import annotations

from enum import Enum

from ...storage import Conflict, Database, Txn
from .._names import name_key

__all__ = ["Claim", "claim", "index_existing_users", "release"]

TABLE = "user_names"
_USERS = "users"


class Claim(Enum):
    FREE = "free"  # the name was free and is now taken for the new user
    TAKEN_EXACTLY = "taken exactly"  # this very id exists
    TAKEN_IGNORING_CASE = "taken ignoring case"  # another id with the same key exists


def claim(txn: Txn, user_id: str, *, allow_shared: bool = False) -> Claim:
    """Take ``user_id``'s name in ``txn``, or say who holds it.

    ``allow_shared`` adds the id to a taken key instead (the bootstrap
    administrator only: its name is the operator's, not a registrant's).
    """
    if txn.get(_USERS, user_id) is not None:
        return Claim.TAKEN_EXACTLY
    key = name_key(user_id)
    row = txn.get(TABLE, key, lock=True)
    if row is None:
        txn.insert(TABLE, key, {"users": [user_id]})
        return Claim.FREE
    holders = [str(u) for u in row.body.get("users", [])]
    if not allow_shared:
        return Claim.TAKEN_IGNORING_CASE
    txn.update(TABLE, key, {"users": sorted({*holders, user_id})})
    return Claim.FREE


def release(txn: Txn, user_id: str) -> None:
    """Free ``user_id``'s name (its user is being deleted in ``txn``)."""
    key = name_key(user_id)
    row = txn.get(TABLE, key, lock=True)
    if row is None:
        return
    holders = [str(u) for u in row.body.get("users", []) if u != user_id]
    if holders:
        txn.update(TABLE, key, {"users": holders})
    else:
        txn.delete(TABLE, key)


def index_existing_users(db: Database) -> int:
    """Give every user without one a row in the index (at start; idempotent).

    Databases from before the index (schema v1) get one here. Reads only the
    ids, not the sealed bodies, so it costs little at every start. Returns the
    number of rows added.
    """
    tries = 3
    while True:
        try:
            with db.write() as txn:
                txn.serialize("user-names")
                indexed = set(txn.unverified_ids(TABLE))
                missing: dict[str, list[str]] = {}
                for user_id in txn.unverified_ids(_USERS):
                    key = name_key(user_id)
                    if key not in indexed:
                        missing.setdefault(key, []).append(user_id)
                for key, ids in missing.items():
                    txn.insert(TABLE, key, {"users": sorted(ids)})
            return len(missing)
        except Conflict:  # a registration on another node took a key meanwhile
            tries -= 1
            if tries == 0:
                raise

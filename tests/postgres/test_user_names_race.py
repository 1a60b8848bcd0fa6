"""Case-insensitive uniqueness of user ids holds for concurrent registrations on
PostgreSQL, where writers are not serialised (issue 10, item 4)."""

from __future__ import annotations

import threading

from confide.errors import Code, ServiceError

from ..unit._auth_support import ADMIN, IP_A, Auth, make_auth

PAIRS = 12


def test_concurrent_case_variants_register_only_once(pg_url: str) -> None:
    # Two services on one database: two frontends racing.
    one, two = make_auth(pg_url), make_auth(pg_url)
    outcomes: dict[int, list[str]] = {}
    lock = threading.Lock()
    start = threading.Barrier(2 * PAIRS)

    def register(auth: Auth, name: str, pair: int) -> None:
        start.wait()
        try:
            auth.register(name)
            result = "ok"
        except ServiceError as e:
            result = f"{e.code.name}: {e.message}"
        with lock:
            outcomes.setdefault(pair, []).append(result)

    threads = [threading.Thread(target=register, args=(auth, name, i))
               for i in range(PAIRS) for auth, name in ((one, f"racer{i}"), (two, f"RACER{i}"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == PAIRS
    for pair, results in outcomes.items():
        assert results.count("ok") == 1, (pair, results)
        loser = next(r for r in results if r != "ok")
        assert loser.startswith(Code.INVALID_ARGUMENT.name) and "unique ignoring case" in loser
    winners = [u for u in one.service.list_users(ADMIN, "x") if u.lower().startswith("racer")]
    assert len(winners) == PAIRS
    assert one.service.login(winners[0], "pw", ip=IP_A)

"""What the shared login throttle costs: UserLogin counting failures in the process or the DB.

In-process ``AuthenticationService.login`` (no RPC), on SQLite and on
PostgreSQL (a fresh database on ``--pg``), two arms alternating ABAB for
``--rounds`` rounds: ``local`` (the per-process tables alone, as before issue
12's shared throttle) and ``shared`` (also the ``login_failures`` table, as
``confide serve`` runs now). Each arm times successful logins and failed ones
(the shared throttle takes a place in both rows, then gives it back, counting a
failure or clearing the user id's count). The argon2 hasher is
the cheapest (t=1, 8 KiB) so that the throttle's cost is not hidden under the
server's ~15 ms hash; the limits never lock anybody (the cost of counting, not
of refusing). Prints p50/p95 per backend, arm and outcome.

Run: ``python bench/login_throttle.py [--logins 300] [--rounds 2] [--pg URL|none]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text

from confide.config import Limits
from confide.errors import ServiceError
from tests.unit._auth_support import Auth, make_auth

_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_LIMITS = Limits(login_user_free_failures=10**9, login_address_free_failures=10**9)
_IP = bytes(12) + bytes([10, 0, 0, 1])


def _time(auth: Auth, n: int, good: bool) -> list[float]:
    samples = []
    for i in range(n):
        user, password = ("alice", "alice-pw") if good else (f"guess-{i % 50}", "wrong")
        t0 = time.perf_counter()
        try:
            auth.service.login(user, password, ip=_IP)
        except ServiceError:
            assert not good
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def _backend(url: str, n: int, rounds: int) -> dict[tuple[str, str], list[float]]:
    arms = {"local": make_auth(url, limits=_LIMITS),
            "shared": make_auth(url, limits=_LIMITS, shared_key=b"k" * 32)}
    arms["local"].register("alice", "alice-pw")
    out: dict[tuple[str, str], list[float]] = {}
    for auth in arms.values():  # warm up
        _time(auth, 20, True)
        _time(auth, 20, False)
    for _ in range(rounds):
        for arm in ("local", "shared", "local", "shared"):
            for good in (True, False):
                out.setdefault((arm, "success" if good else "failure"), []).extend(
                    _time(arms[arm], n // 2, good))
    for auth in arms.values():
        auth.db.close()
    return out


def _pg_database(admin_url: str) -> tuple[str, str]:
    name = f"confide_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def _drop(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--logins", type=int, default=300, help="logins per arm, outcome and round")
    ap.add_argument("--rounds", type=int, default=2, help="ABAB rounds")
    ap.add_argument("--pg", default=_PG, help="PostgreSQL admin URL ('none': SQLite only)")
    args = ap.parse_args()
    results: dict[str, dict[tuple[str, str], list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = _backend(f"sqlite:///{Path(tmp) / 'bench.db'}", args.logins,
                                     args.rounds)
    if args.pg != "none":
        url, name = _pg_database(args.pg)
        try:
            results["postgresql"] = _backend(url, args.logins, args.rounds)
        finally:
            _drop(args.pg, name)
    print(f"{'backend':<11} {'outcome':<8} {'local p50':>10} {'shared p50':>11} "
          f"{'local p95':>10} {'shared p95':>11} {'+p50 ms':>8}")
    for backend, samples in results.items():
        for outcome in ("success", "failure"):
            local, shared = samples[("local", outcome)], samples[("shared", outcome)]
            p50 = statistics.median(local), statistics.median(shared)
            p95 = (statistics.quantiles(local, n=20)[18], statistics.quantiles(shared, n=20)[18])
            print(f"{backend:<11} {outcome:<8} {p50[0]:>10.2f} {p50[1]:>11.2f} "
                  f"{p95[0]:>10.2f} {p95[1]:>11.2f} {p50[1] - p50[0]:>+8.2f}")


if __name__ == "__main__":
    main()

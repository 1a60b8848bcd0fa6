"""Cost of a participant's audit query, with its baselines in the same run.

Run: ``PYTHONPATH=src python bench/participant_audit.py [--sizes 1000,10000] [--runs R]``.

For logs of each size (SQLite, sealed rows, one in ten entries the caller's),
times, as medians of R runs:
* baseline ``admin query``: the administrator's QueryAuditLogs search
  (``AuditLog.query``, newest 100 matching ``message:create``), which reads
  rows until it has 100;
* baseline ``verify chain``: the operator's full walk (``verify_chain``);
* ``first view``: QueryParticipantAudit's server side on a cold index (a
  server's first query: walk and verify the whole chain, index it, build the
  Merkle tree), pick the newest 100 visible with their proofs, sign the head;
* ``view``: the same on a warm index (later queries);
* ``view +100``: the same after 100 more entries were appended;
* ``client verify``: the SDK's check of those 100 entries (leaf, proof, signature).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# bench/ is not a package: this file's directory is on sys.path when run as a script.
from _speed import speed_line
from cryptography.hazmat.primitives.asymmetric import ec

from confide.crypto.audit_proof import TreeHead, verify_inclusion
from confide.crypto.records import RecordSealer
from confide.services.audit import AuditLog, ParticipantView, Subjects
from confide.storage import Database


def _median(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fill(log: AuditLog, n: int) -> None:
    done = 0
    while done < n:
        batch = min(500, n - done)
        # appends are group-committed per caller; here one by one in a loop
        for i in range(done, done + batch):
            log.append(user=f"{{ user: u{i % 10} }}", message="create_task" if i % 2 else
                       "get_task", result=True, ip=bytes(16), actor=f"u{i % 10}",
                       subjects=Subjects.of(tasks=[f"task-{i}"]))
        done += batch


def _measure(n: int, runs: int, key: ec.EllipticCurvePrivateKey
             ) -> tuple[float, float, float, float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'a.db'}", RecordSealer(b"s" * 32))
        log = AuditLog(db, b"k" * 32, clock=time.time)
        _fill(log, n)

        def view() -> tuple[ParticipantView, TreeHead, bytes]:
            v = log.participant_view(lambda actor, subjects: actor == "u3", 100)
            head = TreeHead(v.size, v.root, 0)
            return v, head, head.sign(key)

        t0 = time.perf_counter()
        v, head, sig = view()
        first = time.perf_counter() - t0
        assert len(v.entries) == min(100, n // 10)

        def grown() -> None:
            _fill(log, 100)
            t0 = time.perf_counter()
            view()
            grown_s.append(time.perf_counter() - t0)
        grown_s: list[float] = []

        def client() -> None:
            assert head.verify(key.public_key(), sig)
            for e, proof in v.entries:
                assert verify_inclusion(e.leaf_fields().hash(), e.seq - 1, head.size, proof,
                                        head.root)

        try:
            for _ in range(runs):
                grown()
            return (_median(lambda: log.query("message:create", 100), runs),
                    _median(log.verify_chain, runs), first, _median(view, runs),
                    statistics.median(grown_s), _median(client, runs))
        finally:
            db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    print(speed_line())
    print(f"{'entries':>8} | {'admin query':>12} | {'verify chain':>12} | {'first view':>12} | "
          f"{'view':>10} | {'view +100':>10} | {'client verify':>13}")
    for n in (int(s) for s in args.sizes.split(",")):
        admin, chain, first, part, grown, cli = _measure(n, args.runs, key)
        print(f"{n:>8} | {admin * 1e3:>9.1f} ms | {chain * 1e3:>9.1f} ms | "
              f"{first * 1e3:>9.1f} ms | {part * 1e3:>7.1f} ms | {grown * 1e3:>7.1f} ms | "
              f"{cli * 1e3:>10.1f} ms")


if __name__ == "__main__":
    main()

"""The audit log's structured fields, Merkle leaves and participant view
(services/audit/_log.py), including logs written before leaves existed."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import cbor2
import pytest

from confide.crypto.audit_proof import MerkleTree, legacy_leaf_hash, verify_inclusion
from confide.crypto.records import RecordSealer
from confide.services.audit import AuditChainBroken, AuditLog, Subjects
from confide.storage import Database

KEY = b"k" * 32


def _db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'a.db'}", RecordSealer(b"s" * 32))


def _legacy(db: Database, n: int) -> None:
    """Entries as the audit log wrote them before actors, subjects and leaves."""
    prev = b"\0" * 32
    with db.write() as txn:
        for seq in range(1, n + 1):
            fields = [seq, 1_000_000 * seq, bytes(16), f"{{ user: old{seq} }}", "get_task",
                      True]
            mac = hmac.new(KEY, cbor2.dumps([*fields, prev]), hashlib.sha256).digest()
            txn.insert("audit", str(seq), {"us": fields[1], "ip": fields[2], "user": fields[3],
                                           "message": "get_task", "result": True,
                                           "prev": prev, "mac": mac})
            prev = mac


def test_a_log_from_before_leaves_still_verifies_and_grows(tmp_path: Path) -> None:
    db = _db(tmp_path)
    _legacy(db, 3)
    log = AuditLog(db, KEY, clock=lambda: 10.0)
    assert log.verify_chain() == 3
    log.append(user="{ user: a }", message="create_task", result=True, ip=bytes(16),
               actor="a", subjects=Subjects.of(tasks=["task-1"], functions=["function-1"]))
    assert log.verify_chain() == 4
    view = log.participant_view(lambda actor, subjects: True, 100)
    # the old entries are in the tree but never shown (nobody could recompute their leaf)
    assert view.size == 4 and [e.seq for e, _ in view.entries] == [4]
    entry, proof = view.entries[0]
    assert entry.actor == "a" and entry.subjects.tasks == ("task-1",)
    assert verify_inclusion(entry.leaf_fields().hash(), 3, 4, proof, view.root)
    with db.read() as txn:
        macs = [bytes(r.body["mac"]) for r in txn.scan("audit", order_by="seq")]
    leaves = [legacy_leaf_hash(m) for m in macs[:3]] + [entry.leaf]
    assert MerkleTree(leaves).root == view.root


def test_visibility_limit_and_task_filter(tmp_path: Path) -> None:
    log = AuditLog(_db(tmp_path), KEY, clock=lambda: 10.0)
    for i in range(10):
        log.append(user="u", message=f"m{i}", result=True, ip=bytes(16), actor=f"user{i % 2}",
                   subjects=Subjects.of(tasks=[f"task-{i % 3}"]))
    def mine(actor: str, subjects: Subjects) -> bool:
        return actor == "user0"
    view = log.participant_view(mine, 100)
    assert [e.message for e, _ in view.entries] == ["m8", "m6", "m4", "m2", "m0"]
    assert [e.message for e, _ in log.participant_view(mine, 2).entries] == ["m8", "m6"]
    by_task = log.participant_view(mine, 100, task="task-0")
    assert [e.message for e, _ in by_task.entries] == ["m6", "m0"]
    for e, proof in view.entries:
        assert verify_inclusion(e.leaf_fields().hash(), e.seq - 1, view.size, proof, view.root)


def test_subjects_drop_empty_and_oversized_ids_and_cap_the_count() -> None:
    s = Subjects.of(tasks=["", "t" * 300, "b", "a", "a"], files=[f"f{i:03}" for i in range(100)])
    assert s.tasks == ("a", "b")
    assert len(s.files) == 64 and s.files[0] == "f000"
    assert not Subjects() and s


def test_a_cut_off_head_is_refused_while_the_server_runs(tmp_path: Path) -> None:
    import sqlite3

    log = AuditLog(_db(tmp_path), KEY, clock=lambda: 10.0)
    for i in range(3):
        log.append(user="u", message=f"m{i}", result=True, ip=bytes(16), actor="a")
    with sqlite3.connect(tmp_path / "a.db") as c:
        c.execute("delete from audit where seq = 3")
    with pytest.raises(AuditChainBroken, match="truncated"):
        log.participant_view(lambda actor, subjects: True, 10)


def test_a_flipped_byte_is_a_chain_break_not_a_storage_error(tmp_path: Path) -> None:
    import sqlite3

    log = AuditLog(_db(tmp_path), KEY, clock=lambda: 10.0)
    for i in range(3):
        log.append(user="u", message=f"m{i}", result=True, ip=bytes(16), actor="a")
    with sqlite3.connect(tmp_path / "a.db") as c:
        body = bytearray(c.execute("select body from audit where seq = 2").fetchone()[0])
        body[-1] ^= 1
        c.execute("update audit set body = ? where seq = 2", (bytes(body),))
    with pytest.raises(AuditChainBroken, match="edited in the database: audit/2"):
        log.verify_chain()
    with pytest.raises(AuditChainBroken, match="edited in the database: audit/2"):
        log.participant_view(lambda actor, subjects: True, 10)


def test_views_while_others_append_never_report_a_false_break(tmp_path: Path) -> None:
    import threading

    log = AuditLog(_db(tmp_path), KEY, clock=lambda: 10.0)
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(w: int) -> None:
        try:
            for i in range(100):
                log.append(user="u", message=f"w{w}-{i}", result=True, ip=bytes(16),
                           actor=f"a{w}")
        except BaseException as e:
            errors.append(e)

    def reader() -> None:
        try:
            while not stop.is_set():
                view = log.participant_view(lambda actor, subjects: actor == "a0", 50)
                for e, proof in view.entries:
                    assert verify_inclusion(e.leaf_fields().hash(), e.seq - 1, view.size,
                                            proof, view.root)
        except BaseException as e:
            errors.append(e)

    writers = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in (*writers, *readers):
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert log.verify_chain() == 300
    assert len(log.participant_view(lambda actor, subjects: actor == "a0", 1000).entries) == 100

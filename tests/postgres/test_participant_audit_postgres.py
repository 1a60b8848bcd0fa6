"""Audit for participants on PostgreSQL: the structured fields, the participant view and
its proofs, and a server answering QueryParticipantAudit from PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from confide.crypto.audit_proof import verify_inclusion
from confide.crypto.records import RecordSealer
from confide.services.audit import AuditChainBroken, AuditLog, Subjects
from confide.storage import Database
from tests.platform._helpers import input_file
from tests.platform._server import Server


def test_participant_view_and_tamper_on_postgres(pg_url: str) -> None:
    from sqlalchemy import create_engine, text

    db = Database(pg_url, RecordSealer(b"s" * 32))
    try:
        log = AuditLog(db, b"k" * 32, clock=lambda: 5.0)
        for i in range(6):
            log.append(user="u", message=f"m{i}", result=True, ip=bytes(16),
                       actor=f"a{i % 2}", subjects=Subjects.of(files=[f"input-{i}"]))
        view = log.participant_view(lambda actor, subjects: actor == "a1", 10)
        assert [e.message for e, _ in view.entries] == ["m5", "m3", "m1"]
        for e, proof in view.entries:
            assert verify_inclusion(e.leaf_fields().hash(), e.seq - 1, view.size, proof,
                                    view.root)
        assert log.verify_chain() == 6
        engine = create_engine(pg_url)
        with engine.begin() as c:
            body = bytearray(c.execute(text("select body from audit where seq = 4")).scalar_one())
            body[len(body) // 2] ^= 1
            c.execute(text("update audit set body = :b where seq = 4"), {"b": bytes(body)})
        engine.dispose()
        with pytest.raises(AuditChainBroken, match="#4"):
            log.participant_view(lambda actor, subjects: True, 10)
    finally:
        db.close()


def test_a_server_on_postgres_answers_participants(pg_url: str, tmp_path: Path) -> None:
    server = Server(tmp_path / "data", database_url=pg_url).start()
    try:
        alice_id, alice = server.new_user("DataOwner", "a", prefix="alice")
        _, bob = server.new_user("DataOwner", "b", prefix="bob")
        with alice, bob:
            f = input_file(alice)
            mine = alice.participant_audit()
            assert any(f in e.file_ids and e.actor == alice_id for e in mine.entries)
            assert not any(f in e.file_ids for e in bob.participant_audit().entries)
    finally:
        server.stop()

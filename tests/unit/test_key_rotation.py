"""Key rotation (issue 13 item 8): the keyring, and each key kind across a rotation.

Old data stays readable, new data is under the new kid, a changed kid is
refused, the ring never goes backwards in a running process, and every
rotation and reseal is an audit entry.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import jwt
import pytest

from confide.config import Limits
from confide.crypto.records import RecordSealer, TamperedRecord
from confide.keys import KeyRing, KeysError, LiveKeys, RootSecret, parse_kid
from confide.services.audit import AuditChainBroken, AuditEntry, AuditLog
from confide.services.audit._log import _mac
from confide.services.authentication import TokenSigner
from confide.services.authentication._tokens import TokenError
from confide.services.blobstore._errors import SignatureInvalid
from confide.services.blobstore._presign import parse_kid_param, presign_url, verify_presigned
from confide.services.keys import KeyRotation, parse_duration
from confide.storage import Database, Tampered

ROOT = RootSecret(b"r" * 32)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _platform(tmp_path: Path, name: str = "k.db") -> tuple[Database, KeyRotation, AuditLog,
                                                          _Clock]:
    clock = _Clock()
    live = LiveKeys(KeyRing(ROOT))
    db = Database(f"sqlite:///{tmp_path / name}", RecordSealer(live.view("record")))
    rotation = KeyRotation(db, ROOT, live, clock=clock)
    rotation.start()
    audit = AuditLog(db, live.view("audit"), clock=clock)
    rotation.audit = audit
    return db, rotation, audit, clock


# -- the ring -------------------------------------------------------------------------


def test_version_one_is_the_key_every_release_before_derived() -> None:
    ring = KeyRing(ROOT)
    assert ring.active_key("record") == (1, ROOT.derive("record-seal", 32))
    assert ring.active_key("token") == (1, ROOT.derive("token-sign", 64))
    assert ring.active_key("audit") == (1, ROOT.derive("audit-chain", 32))
    assert ring.active_key("presign") == (1, ROOT.derive("blob-presign", 32))


def test_a_sealed_ring_round_trips_and_never_shows_key_bytes() -> None:
    ring = KeyRing(ROOT).rotated(["token", "record"], now=10).rotated(["record"], now=20)
    again = KeyRing.open(ring.seal(), ROOT)
    assert again.extends(ring) and ring.extends(again)
    assert [v.kid for v in again.versions("record")] == ["record-1", "record-2", "record-3"]
    assert again.active("record").created == 20 and again.active("audit").version == 1
    blob = ring.seal()
    for kind in ("record", "token"):
        for v in ring.versions(kind):
            key = ring.key(kind, v.version)
            assert key is not None and key not in blob
    assert "record-3" in repr(ring) and ring.key("record", 3) is not None
    assert str(ring.key("record", 3)) not in repr(ring)


def test_a_tampered_or_foreign_ring_is_refused() -> None:
    blob = bytearray(KeyRing(ROOT).rotated(["audit"], now=1).seal())
    blob[-1] ^= 1
    with pytest.raises(KeysError, match="keyring-invalid"):
        KeyRing.open(bytes(blob), ROOT)
    with pytest.raises(KeysError, match="another platform"):
        KeyRing.open(KeyRing(ROOT).seal(), RootSecret(b"x" * 32))
    with pytest.raises(KeysError, match="keyring-invalid"):
        KeyRing.open(b"not a ring", ROOT)


def test_a_running_process_refuses_a_rolled_back_ring() -> None:
    old = KeyRing(ROOT).started(1)
    new = old.rotated(["token"], now=2)
    live = LiveKeys(old)
    assert live.install(new)
    with pytest.raises(KeysError, match="keyring-rollback"):
        live.install(old)
    assert live.ring.active("token").version == 2


def test_kids_are_parsed_strictly() -> None:
    assert parse_kid("token-12", "token") == 12
    for bad in ("token-0", "token-01", "record-2", "token-", "token-99999999999", "token-1 "):
        with pytest.raises(KeysError, match="bad-kid"):
            parse_kid(bad, "token")


def test_durations() -> None:
    assert parse_duration("90d") == 90 * 86400 and parse_duration("12h") == 43200
    assert parse_duration("off") is None
    for bad in ("90", "1.5d", "-1d", "10s", "ninety days"):
        with pytest.raises(ValueError):
            parse_duration(bad)


# -- records --------------------------------------------------------------------------


def test_rows_of_the_previous_release_still_open_and_new_rows_carry_the_new_kid() -> None:
    legacy = RecordSealer(ROOT.derive("record-seal", 32))
    # The format before rotation: 0x01 ‖ nonce ‖ ciphertext, AD without a version.
    import cbor2
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    old_row = b"\x01" + b"n" * 12 + AESGCM(ROOT.derive("record-seal", 32)).encrypt(
        b"n" * 12, b"old body", cbor2.dumps(["t", "1", ["c"]]))
    live = LiveKeys(KeyRing(ROOT).rotated(["record"], now=1))
    sealer = RecordSealer(live.view("record"))
    assert sealer.open("t", "1", ["c"], old_row) == b"old body"
    new_row = sealer.seal("t", "2", ["c"], b"new body")
    assert RecordSealer.version_of(new_row) == 2 and new_row[:5] == b"\x02\0\0\0\x02"
    assert sealer.open("t", "2", ["c"], new_row) == b"new body"
    assert legacy.open("t", "1", ["c"], old_row) == b"old body"
    with pytest.raises(TamperedRecord, match="unknown key"):
        legacy.open("t", "2", ["c"], new_row)


def test_a_changed_record_kid_is_refused() -> None:
    live = LiveKeys(KeyRing(ROOT).rotated(["record"], now=1).rotated(["record"], now=2))
    sealer = RecordSealer(live.view("record"))
    row = sealer.seal("t", "1", [], b"body")
    for version in (1, 2, 4, 2**32 - 1):
        forged = b"\x02" + version.to_bytes(4, "big") + row[5:]
        with pytest.raises(TamperedRecord):
            sealer.open("t", "1", [], forged)
    as_v1 = b"\x01" + row[5:]
    with pytest.raises(TamperedRecord):
        sealer.open("t", "1", [], as_v1)


def test_reseal_rewrites_old_rows_in_batches_and_resumes(tmp_path: Path) -> None:
    db, rotation, _audit, _clock = _platform(tmp_path)
    with db.write() as txn:
        for i in range(23):
            txn.insert("files", f"f{i:02}", {"n": i})
    rotation.rotate(["record"], actor="test")
    with db.write() as txn:
        txn.insert("files", "new", {"n": -1})
    assert db.count_by_key("files") == {1: 23, 2: 1}
    step = db.reseal_batch("files", after=None, limit=10)  # "interrupted" after one batch
    assert step.resealed == 10 and step.after == "f09"
    assert db.count_by_key("files") == {1: 13, 2: 11}
    report = rotation.reseal(actor="test", batch=4)
    assert report.kid == "record-2" and report.tables["files"] == 13
    assert db.count_by_key("files") == {2: 24}
    with db.read() as txn:
        assert sorted(r.body["n"] for r in txn.scan("files")) == [-1, *range(23)]
    assert rotation.reseal(actor="test").resealed == 0
    entries = [e.message for e in _audit.query("key", 10)]
    assert "key_reseal: 0 rows to record-2" in entries[0]
    assert any("key_reseal: " in m and "rows to record-2" in m for m in entries[1:])
    assert "key_rotate: record-2" in entries


def test_reseal_stops_at_a_tampered_row(tmp_path: Path) -> None:
    db, rotation, _audit, _clock = _platform(tmp_path)
    with db.write() as txn:
        txn.insert("files", "a", {"n": 1})
    rotation.rotate(["record"], actor="test")
    with sqlite3.connect(tmp_path / "k.db") as c:
        body = bytearray(c.execute("select body from files").fetchone()[0])
        body[-1] ^= 1
        c.execute("update files set body = ?", (bytes(body),))
    with pytest.raises(Tampered):
        rotation.reseal(actor="test")


# -- the ring in the database ---------------------------------------------------------


def test_the_ring_survives_a_restart_and_other_processes_pick_it_up(tmp_path: Path) -> None:
    db, rotation, _audit, _clock = _platform(tmp_path)
    other_db, other, _other_audit, _ = _platform(tmp_path)  # a second process, same db
    rotation.rotate(["record", "token"], actor="test")
    with db.write() as txn:
        txn.insert("files", "x", {"secret": "s"})
    # The other process has not reloaded: meeting record-2 makes it reload once.
    assert other.live.ring.active("record").version == 1
    with other_db.read() as txn:
        row = txn.get("files", "x")
        assert row is not None and row.body == {"secret": "s"}
    assert other.live.ring.active("record").version == 2
    db.close()
    other_db.close()
    db3, again, _, _ = _platform(tmp_path)
    assert again.live.ring.active("token").kid == "token-2"
    with db3.read() as txn:
        row = txn.get("files", "x")
        assert row is not None and row.body == {"secret": "s"}


def test_a_key_met_right_after_a_periodic_reload_is_still_found(tmp_path: Path) -> None:
    _db, rotation, _, _ = _platform(tmp_path)
    _db2, other, _, _ = _platform(tmp_path)
    rotation.refresh()  # the server's periodic check, just before another process rotates
    other.rotate(["token"], actor="other")
    assert rotation.live.lookup("token", 2) is not None
    assert rotation.live.lookup("token", 3) is None  # does not exist: refused
    assert rotation.live.lookup("token", 10**6) is None  # no ring can hold it: not even read


def test_concurrent_rotations_both_land(tmp_path: Path) -> None:
    _db, a, _, _ = _platform(tmp_path)
    _db2, b, _, _ = _platform(tmp_path)
    a.rotate(["token"], actor="a")
    b.rotate(["token"], actor="b")  # b's view was stale: compare-and-swap retries on top
    assert b.live.ring.active("token").version == 3
    assert a.refresh() and a.live.ring.active("token").version == 3


def test_a_rolled_back_ring_row_is_refused_by_a_running_process(tmp_path: Path) -> None:
    db, rotation, _, _ = _platform(tmp_path)
    before = db.read_meta("keyring")
    rotation.rotate(["record"], actor="test")
    with sqlite3.connect(tmp_path / "k.db") as c:
        c.execute("update meta set value = ? where key = 'keyring'", (before,))
    with pytest.raises(KeysError, match="keyring-rollback"):
        rotation.refresh()
    assert rotation.live.ring.active("record").version == 2


def test_scheduled_rotation_rotates_what_is_due(tmp_path: Path) -> None:
    _db, rotation, audit, clock = _platform(tmp_path)
    assert rotation.check(86400) == []
    clock.now += 86400
    made = rotation.check(86400)
    assert sorted(v.kid for v in made) == ["audit-2", "presign-2", "record-2", "token-2"]
    assert rotation.check(86400) == [] and rotation.check(None) == []
    rows = audit.query("key", 10)
    assert {e.message for e in rows} >= {"key_rotate: token-2", "key_rotate: audit-2"}
    assert all(e.user == "scheduled rotation" for e in rows)


def test_rotation_refuses_unknown_kinds(tmp_path: Path) -> None:
    _db, rotation, _, _ = _platform(tmp_path)
    with pytest.raises(KeysError, match="unknown-kind"):
        rotation.rotate(["platform-ca"], actor="test")


def test_status_shows_kids_and_rows_never_bytes(tmp_path: Path) -> None:
    db, rotation, _, _ = _platform(tmp_path)
    with db.write() as txn:
        txn.insert("files", "a", {})
    rotation.rotate(["record"], actor="test")
    status = rotation.status()
    records = status["kinds"]["record"]  # type: ignore[index]
    assert [r["kid"] for r in records] == ["record-1", "record-2"]
    assert records[0]["rows"] == 1 and records[1]["active"] is True
    assert ROOT.derive("record-seal", 32).hex() not in repr(status)


# -- tokens ---------------------------------------------------------------------------


def test_tokens_name_their_key_and_old_ones_verify_until_they_expire() -> None:
    live = LiveKeys(KeyRing(ROOT))
    signer = TokenSigner(live.view("token"), 3600)
    old = signer.issue("u", "r", 0, now=100)
    assert jwt.get_unverified_header(old)["kid"] == "token-1"
    live.install(live.ring.rotated(["token"], now=1))
    new = signer.issue("u", "r", 0, now=100)
    assert jwt.get_unverified_header(new)["kid"] == "token-2"
    assert signer.verify(old, "u", now=200).sub == "u"
    assert signer.verify(new, "u", now=200).sub == "u"
    with pytest.raises(TokenError, match="expired"):
        signer.verify(old, "u", now=100 + 3600)


def test_a_token_of_the_previous_release_without_kid_verifies() -> None:
    legacy = jwt.encode({"sub": "u", "role": "r", "iss": "Teaclave", "exp": 999, "gen": 0},
                        ROOT.derive("token-sign", 64), algorithm="HS512")
    live = LiveKeys(KeyRing(ROOT).rotated(["token"], now=1))
    assert TokenSigner(live.view("token"), 60).verify(legacy, "u", now=1).sub == "u"


def test_a_changed_token_kid_is_refused() -> None:
    live = LiveKeys(KeyRing(ROOT).rotated(["token"], now=1))
    signer = TokenSigner(live.view("token"), 3600)
    token = signer.issue("u", "r", 0, now=100)
    header, payload, sig = token.split(".")
    for kid in ("token-1", "token-3", "record-2", "x"):
        forged_header = jwt.utils.base64url_encode(
            jwt.utils.base64url_decode(header).replace(b'"token-2"', f'"{kid}"'.encode()))
        with pytest.raises(TokenError):
            signer.verify(f"{forged_header.decode()}.{payload}.{sig}", "u", now=200)
    # A token signed by a key of another platform naming a kid we hold is refused too.
    foreign = jwt.encode({"sub": "u", "role": "r", "iss": "Teaclave", "exp": 999, "gen": 0},
                         b"f" * 64, algorithm="HS512", headers={"kid": "token-2"})
    with pytest.raises(TokenError, match="Signature"):
        signer.verify(foreign, "u", now=1)


# -- presigned URLs -------------------------------------------------------------------


def _parts(url: str) -> dict[str, str]:
    query = url.partition("?")[2]
    return dict(p.split("=", 1) for p in query.split("&"))


def test_presigned_urls_carry_the_kid_and_old_ones_stay_valid() -> None:
    ring = KeyRing(ROOT).rotated(["presign"], now=1)
    k1, k2 = ring.key("presign", 1), ring.key("presign", 2)
    assert k1 is not None and k2 is not None
    limit = Limits().max_blob_name_chars
    legacy = presign_url("http://h:1", k1, "obj", "GET", 500, max_name_chars=limit)
    assert "kid=" not in legacy
    new = presign_url("http://h:1", k2, "obj", "GET", 500, max_name_chars=limit, kid=2)
    q_old, q_new = _parts(legacy), _parts(new)
    verify_presigned(k1, "GET", "obj", q_old["expires"], q_old["sig"], now=400)
    assert parse_kid_param(q_new["kid"]) == 2
    verify_presigned(k2, "GET", "obj", q_new["expires"], q_new["sig"], now=400, kid=2)
    # The kid is signed: the same tag under another kid, or with no kid, fails.
    for key, kid in ((k2, 3), (k2, None), (k1, 1), (k1, None)):
        with pytest.raises(SignatureInvalid):
            verify_presigned(key, "GET", "obj", q_new["expires"], q_new["sig"], now=1, kid=kid)
    for bad in ("0", "02", "-1", "1e3", "99999999999", ""):
        with pytest.raises(SignatureInvalid, match="kid"):
            parse_kid_param(bad)


# -- the audit chain ------------------------------------------------------------------


def test_the_audit_chain_verifies_across_a_rotation(tmp_path: Path) -> None:
    # Entries of the previous release: no kid, MACed by the derived key without one.
    clock = _Clock()
    live = LiveKeys(KeyRing(ROOT))
    db = Database(f"sqlite:///{tmp_path / 'a.db'}", RecordSealer(live.view("record")))
    prev = b"\0" * 32
    with db.write() as txn:
        for seq in (1, 2):
            entry = AuditEntry(seq, 5, bytes(16), "u", f"old {seq}", True)
            mac = _mac(ROOT.derive("audit-chain", 32), prev, entry)
            txn.insert("audit", str(seq), {"us": 5, "ip": bytes(16), "user": "u",
                                           "message": f"old {seq}", "result": True,
                                           "prev": prev, "mac": mac})
            prev = mac
    rotation = KeyRotation(db, ROOT, live, clock=clock)
    rotation.start()
    audit = rotation.audit = AuditLog(db, live.view("audit"), clock=clock)
    audit.append(user="u", message="before", result=True, ip=bytes(16))
    rotation.rotate(["audit"], actor="test")  # its own entry is MACed by audit-2
    audit.append(user="u", message="after", result=True, ip=bytes(16))
    assert audit.verify_chain() == 5
    with db.read() as txn:
        kids = [r.body.get("kid") for r in txn.scan("audit", order_by="seq")]
    assert kids == [None, None, 1, 2, 2]
    # A previous-release tool (one key, version 1) cannot verify audit-2 entries.
    with pytest.raises(AuditChainBroken, match="#4 names an unknown key"):
        AuditLog(db, ROOT.derive("audit-chain", 32), clock=clock).verify_chain()


def test_a_changed_audit_kid_breaks_the_chain(tmp_path: Path) -> None:
    db, rotation, audit, _ = _platform(tmp_path)
    audit.append(user="u", message="x", result=True, ip=bytes(16))
    rotation.rotate(["audit"], actor="test")
    audit.append(user="u", message="y", result=True, ip=bytes(16))
    assert audit.verify_chain() == 3
    for kid in (1, 3, None, "2", -1):
        with db.write() as txn:
            row = txn.get("audit", "3")
            assert row is not None
            body = dict(row.body)
            if kid is None:
                body.pop("kid")
            else:
                body["kid"] = kid
            txn.update("audit", "3", body)
        with pytest.raises(AuditChainBroken, match="#3"):
            audit.verify_chain()
        with db.write() as txn:
            txn.update("audit", "3", row.body)
    assert audit.verify_chain() == 3


# -- [keys] settings ------------------------------------------------------------------


def test_keys_settings_are_validated_naming_the_key() -> None:
    from confide.settings import SettingsError, settings_from

    assert settings_from({"keys": {"rotate_after": "90d"}}, {}).keys.rotate_after == "90d"
    env = {"CONFIDE_KEYS__ROTATE_AFTER": "12h", "CONFIDE_KEYS__CHECK_INTERVAL_S": "2.5"}
    keys = settings_from({}, env).keys
    assert (keys.rotate_after, keys.check_interval_s) == ("12h", 2.5)
    with pytest.raises(SettingsError) as info:
        settings_from({"keys": {"rotate_after": "90 days", "check_interval_s": 0,
                                "rotate_afer": "1d"}}, {})
    text = str(info.value)
    assert "keys.rotate_after: expected a duration" in text
    assert "keys.check_interval_s: must be 0.1..3600" in text
    assert "did you mean keys.rotate_after" in text
    with pytest.raises(SettingsError, match=r"keys\.rotate_after: must be at least 60 s"):
        settings_from({"keys": {"rotate_after": "30s"}}, {})


def test_a_database_of_the_previous_release_opens_and_reseals(tmp_path: Path) -> None:
    """Rows in the 0x01 format (no keyring, one derived key), as the previous release wrote."""
    import os

    import cbor2
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from confide.node import open_platform_keys

    url = f"sqlite:///{tmp_path / 'old.db'}"
    Database(url, RecordSealer(b"\0" * 32)).close()  # the schema only
    aead = AESGCM(ROOT.derive("record-seal", 32))
    with sqlite3.connect(tmp_path / "old.db") as c:
        for i in range(5):
            row_id, nonce = f"file-{i}", os.urandom(12)
            ad = cbor2.dumps(["files", row_id, ["files", row_id]])
            body = b"\x01" + nonce + aead.encrypt(nonce, cbor2.dumps({"n": i}), ad)
            c.execute("insert into files (id, body) values (?, ?)", (row_id, body))
    keys = open_platform_keys(ROOT, url)
    try:
        assert keys.db.count_by_key("files") == {1: 5}
        with keys.db.read() as txn:
            assert sorted(r.body["n"] for r in txn.scan("files")) == list(range(5))
        keys.rotation.rotate(["record"], actor="test")
        assert keys.rotation.reseal(actor="test", batch=2).tables["files"] == 5
        assert keys.db.count_by_key("files") == {2: 5}
        with keys.db.read() as txn:
            assert sorted(r.body["n"] for r in txn.scan("files")) == list(range(5))
    finally:
        keys.close()

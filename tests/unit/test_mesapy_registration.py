"""MesaPy mode in management and the scheduler (no gRPC): the dialect stored with the
function, the original payload kept, the translation staged, the refusals."""

from __future__ import annotations

from pathlib import Path

from confide.errors import Code
from confide.mesapy import MAGIC, unpack
from confide.services._records import FunctionRecord
from confide.services.management import FunctionSpecInput

from ._services import ALICE, FUNCTION_OWNER, Platform, platform, refused

PY2 = b"def entrypoint(argv):\n    print 'x'\n    return str(7 / 2)\n"


def _spec(payload: bytes, *, teaclave_api: bool, executor_type: str = "python"
          ) -> FunctionSpecInput:
    return FunctionSpecInput(name="fn", description="", executor_type=executor_type,
                             public=True, payload=payload, arguments=[], inputs=[], outputs=[],
                             user_allowlist=[], usage_quota=-1, teaclave_api=teaclave_api)


def _record(p: Platform, fid: str) -> FunctionRecord:
    with p.db.read() as txn:
        record = FunctionRecord.load(txn, fid)
    assert record is not None
    return record


def _staged_payload(p: Platform, fid: str) -> bytes:
    tid = p.management.tasks.create(ALICE, fid, "{}", "mesapy", [], [])
    p.management.tasks.approve(ALICE, tid)
    p.invoke(ALICE, tid)
    staged = p.pull("executor-1")
    assert staged is not None and staged.task_id == tid
    return staged.function_payload


def test_teaclave_registration_stores_the_payload_and_stages_its_translation(
        tmp_path: Path) -> None:
    p = platform(tmp_path)
    fid = p.management.functions.register(FUNCTION_OWNER, _spec(PY2, teaclave_api=True))
    record = _record(p, fid)
    assert record.payload == PY2 and record.dialect == "python2"
    translation = unpack(record.translation)
    assert translation is not None and b"print('x')" in translation.source
    assert _staged_payload(p, fid) == record.translation
    assert p.management.functions.get(FUNCTION_OWNER, fid).payload == PY2


def test_confide_v1_registration_is_python3_and_stages_the_payload(tmp_path: Path) -> None:
    p = platform(tmp_path)
    fid = p.management.functions.register(FUNCTION_OWNER, _spec(PY2, teaclave_api=False))
    record = _record(p, fid)
    assert (record.dialect, record.translation) == ("python3", b"")
    assert _staged_payload(p, fid) == PY2


def test_a_python3_payload_shaped_like_a_staged_one_stays_a_python3_payload(
        tmp_path: Path) -> None:
    p = platform(tmp_path)
    spoof = MAGIC + b"division=floor\ndef entrypoint(argv):\n    return 'x'\n"
    fid = p.management.functions.register(FUNCTION_OWNER, _spec(spoof, teaclave_api=False))
    staged = _staged_payload(p, fid)
    assert staged == b"\x00" + spoof and unpack(staged) is None


def test_untranslatable_payload_is_refused_on_register_and_update(tmp_path: Path) -> None:
    p = platform(tmp_path)
    bad = b"def entrypoint(argv):\n    return 1 +* 2\n"
    with refused(Code.INVALID_ARGUMENT):
        p.management.functions.register(FUNCTION_OWNER, _spec(bad, teaclave_api=True))
    fid = p.management.functions.register(FUNCTION_OWNER, _spec(PY2, teaclave_api=True))
    with refused(Code.INVALID_ARGUMENT,
                 "MesaPy payload does not translate to Python 3: line 2: invalid Python 2 "
                 "syntax near '*'"):
        p.management.functions.update(FUNCTION_OWNER, fid, _spec(bad, teaclave_api=True))
    assert _record(p, fid).payload == PY2  # unchanged


def test_update_changes_the_dialect_with_the_payload(tmp_path: Path) -> None:
    p = platform(tmp_path)
    fid = p.management.functions.register(FUNCTION_OWNER, _spec(PY2, teaclave_api=True))
    p.management.functions.update(FUNCTION_OWNER, fid, _spec(
        b"# confide: python3\ndef entrypoint(argv):\n    return 'x'\n", teaclave_api=True))
    assert (_record(p, fid).dialect, _record(p, fid).translation) == ("python3", b"")
    p.management.functions.update(FUNCTION_OWNER, fid, _spec(b"", teaclave_api=True,
                                                              executor_type="builtin"))
    assert _record(p, fid).dialect == "python3"


def test_records_from_before_mesapy_mode_read_as_python3() -> None:
    old = {"id": "function-1", "seq": 1, "name": "fn", "description": "",
           "executor_type": "python", "public": True, "payload": b"x", "arguments": [],
           "inputs": [], "outputs": [], "owner": "o", "user_allowlist": [], "usage_quota": None}
    record = FunctionRecord.from_dict(old)
    assert (record.dialect, record.translation) == ("python3", b"")

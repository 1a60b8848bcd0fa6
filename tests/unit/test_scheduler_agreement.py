"""Scheduler nodes on one database agree on the clock and the executor timeout (issue 12):
the checks with injected clocks, on SQLite (tests/postgres has the real clock and nodes)."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest

from confide.crypto.records import RecordSealer
from confide.node._readiness import RULES, Checks
from confide.services.scheduler import AgreementError, SchedulerAgreement
from confide.services.scheduler._agreement import Skew, measure_skew
from confide.storage import Database, StorageUnavailable

from ._auth_support import Clock

HORIZON_S = 10.0


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'a.db'}", RecordSealer(b"s" * 32))


class ServerClock:
    """The database server's clock: this node's plus an offset, and a round trip."""

    def __init__(self, node: Clock, offset_s: float = 0.0, round_trip_s: float = 0.0) -> None:
        self.node = node
        self.offset_s = offset_s
        self.round_trip_s = round_trip_s

    def __call__(self) -> float:
        self.node.advance(self.round_trip_s / 2)
        now = self.node.now + self.offset_s
        self.node.advance(self.round_trip_s / 2)
        return now


def _node(db: Database, generation: str, timeout_s: float, clock: Clock,
          server: ServerClock | None = None) -> SchedulerAgreement:
    server = server or ServerClock(clock)
    return SchedulerAgreement(db, generation=generation, executor_timeout_s=timeout_s,
                              max_skew_s=1.0, horizon_s=HORIZON_S, clock=clock,
                              server_time=server)


def test_skew_is_measured_around_the_round_trip() -> None:
    clock = Clock(100.0)
    skew = measure_skew(ServerClock(clock, offset_s=0.5, round_trip_s=0.2), clock)
    assert skew is not None
    assert skew.offset_s == pytest.approx(0.5) and skew.round_trip_s == pytest.approx(0.2)
    assert measure_skew(lambda: None, clock) is None  # SQLite: no clock of its own
    assert not Skew(1.4, 1.0).beyond(1.0)  # within the bound plus half the round trip
    assert Skew(1.6, 1.0).beyond(1.0) and Skew(-1.6, 1.0).beyond(1.0)


@pytest.mark.parametrize(("offset", "says"), [(2.0, "2.000 s behind"), (-3.5, "3.500 s ahead of")])
def test_a_node_whose_clock_is_off_does_not_start(db: Database, offset: float,
                                                  says: str) -> None:
    clock = Clock()
    node = _node(db, "a", 30, clock, ServerClock(clock, offset_s=offset))
    with pytest.raises(AgreementError) as e:
        node.check_start()
    assert says in str(e.value) and "than the 1 s allowed (max_clock_skew_s)" in str(e.value)
    assert db.read_meta("scheduler-nodes") is None  # not registered


def test_a_slow_round_trip_is_not_taken_for_skew(db: Database) -> None:
    clock = Clock()
    _node(db, "a", 30, clock, ServerClock(clock, offset_s=1.4, round_trip_s=1.0)).check_start()


def test_a_second_node_with_another_executor_timeout_is_refused(db: Database) -> None:
    clock = Clock()
    _node(db, "a", 30, clock).check_start()
    _node(db, "b", 30, clock).check_start()  # the same timeout: fine
    with pytest.raises(AgreementError) as e:
        _node(db, "c", 10, clock).check_start()
    assert "another scheduler node on this database uses --executor-timeout 30 s, " \
           "this one 10 s" in str(e.value)
    assert set(cbor2.loads(db.read_meta("scheduler-nodes") or b"")) == {"a", "b"}


def test_a_node_gone_past_the_horizon_or_stopped_no_longer_counts(db: Database) -> None:
    clock = Clock()
    a = _node(db, "a", 30, clock)
    a.check_start()
    clock.advance(HORIZON_S - 1)
    with pytest.raises(AgreementError, match="last seen 9 s ago"):
        _node(db, "b", 10, clock).check_start()
    clock.advance(1)  # a crashed: not seen for the horizon
    _node(db, "b", 10, clock).check_start()
    b2 = _node(db, "b2", 10, clock)
    b2.check_start()
    b2.leave()
    with pytest.raises(AgreementError):  # b is still there
        _node(db, "c", 30, clock).check_start()
    _node(db, "b", 10, clock).leave()
    _node(db, "c", 30, clock).check_start()  # every 10 s node stopped


def test_a_serving_node_turns_not_serving_while_another_disagrees(db: Database) -> None:
    clock = Clock()
    a = _node(db, "a", 30, clock)
    a.check_start()
    # b registers without the start check (it started while a could not reach the database)
    b = _node(db, "b", 10, clock)
    assert b.check() is False
    assert a.check() is False
    b.leave()
    assert a.check() is True
    rule = RULES["scheduler"]
    assert rule.statuses(Checks(True, True, True, agreement=False), ["s"]) == {
        "": False, "s": False}


def test_a_serving_node_whose_clock_drifts_turns_not_serving_and_back(db: Database) -> None:
    clock = Clock()
    server = ServerClock(clock)
    a = _node(db, "a", 30, clock, server)
    a.check_start()
    server.offset_s = 5.0
    assert a.check() is False
    server.offset_s = 0.2
    assert a.check() is True


def test_a_database_failure_keeps_the_last_answer(db: Database) -> None:
    clock = Clock()
    server = ServerClock(clock)
    down = False

    def server_time() -> float | None:
        if down:
            raise StorageUnavailable("gone")
        return server()

    a = SchedulerAgreement(db, generation="a", executor_timeout_s=30, max_skew_s=1.0,
                           horizon_s=HORIZON_S, clock=clock, server_time=server_time)
    a.check_start()
    down = True
    assert a.check() is True  # the database check reports the outage, not this one
    down, server.offset_s = False, 5.0
    assert a.check() is False
    down = True
    assert a.check() is False


@pytest.mark.parametrize("row", [b"\xff", cbor2.dumps([1, 2]),
                                 cbor2.dumps({"x": [float("nan"), 1.0], 7: [1, 2]})])
def test_a_malformed_row_counts_as_empty(db: Database, row: bytes) -> None:
    assert db.swap_meta("scheduler-nodes", None, row)
    clock = Clock()
    _node(db, "a", 30, clock).check_start()
    assert set(cbor2.loads(db.read_meta("scheduler-nodes") or b"")) == {"a"}


def test_bad_bounds_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="clock skew bound"):
        SchedulerAgreement(db, generation="a", executor_timeout_s=30, max_skew_s=0,
                           horizon_s=1, clock=Clock())

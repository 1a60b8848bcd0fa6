"""The task state machine (spec §3.7), without gRPC, on the storage seam (SQLite).

Every party whose data or code a task touches approves it before it runs;
nobody assigns data they do not own; outputs are written once; cancel is final.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confide.errors import Code, ServiceError
from confide.services._records import TaskResult, TaskStatus
from confide.services.management import CANCELED_EARLY, CANCELED_LATE, DataAssignment, DataOwners

from ._services import (
    ALICE,
    BOB,
    FUNCTION_OWNER,
    MALLORY,
    Platform,
    admin,
    approve_all,
    platform,
    refused,
    register_function,
    register_input,
    register_output,
    staged_task,
    three_party_task,
)


@pytest.fixture
def p(tmp_path: Path) -> Platform:
    return platform(tmp_path)


# -- creation ------------------------------------------------------------------
def test_participants_are_the_creator_the_data_owners_and_a_private_function_owner(
        p: Platform) -> None:
    t = three_party_task(p)
    assert p.task(t.task_id).participants == ["alice", "bob", "fo"]


def test_data_owner_not_on_the_allow_list_cannot_use_a_private_function(p: Platform) -> None:
    fid = register_function(p, allow=("alice",))
    with refused(Code.PERMISSION_DENIED):
        p.management.tasks.create(MALLORY, fid, '{"message": "x"}', "builtin",
                                  [DataOwners("in", ["mallory"])], [DataOwners("out", ["mallory"])])


def test_allow_list_matches_a_data_owners_attribute(p: Platform) -> None:
    fid = register_function(p, allow=("bank-m",))
    p.management.tasks.create(MALLORY, fid, '{"message": "x"}', "builtin",
                              [DataOwners("in", ["mallory"])], [DataOwners("out", ["mallory"])])


def test_creator_cannot_override_a_fixed_argument(p: Platform) -> None:
    fid = register_function(p)
    with refused(Code.INVALID_ARGUMENT, "invalid task"):
        p.management.tasks.create(ALICE, fid, '{"message": "x", "save_log": "true"}',
                                  "builtin", [DataOwners("in", ["alice"])],
                                  [DataOwners("out", ["bob"])])
    tid = p.management.tasks.create(ALICE, fid, '{"message": "x"}', "builtin",
                                    [DataOwners("in", ["alice"])], [DataOwners("out", ["bob"])])
    assert json.loads(p.task(tid).function_arguments) == {"message": "x", "save_log": "false"}


def test_every_declared_file_needs_its_owners(p: Platform) -> None:
    fid = register_function(p)
    with refused(Code.INVALID_ARGUMENT, "invalid task"):
        p.management.tasks.create(ALICE, fid, '{"message": "x"}', "builtin",
                                  [DataOwners("in", ["alice"])], [])


def test_unknown_executor_is_refused_with_the_valid_names(p: Platform) -> None:
    fid = register_function(p)
    with refused(Code.INTERNAL, "Unsupported executor: sgx (executors: builtin, mesapy, wamr)"):
        p.management.tasks.create(ALICE, fid, '{"message": "x"}', "sgx",
                                  [DataOwners("in", ["alice"])], [DataOwners("out", ["bob"])])


# -- assignment ----------------------------------------------------------------
def test_data_owner_cannot_assign_a_file_it_does_not_own(p: Platform) -> None:
    fid = register_function(p)
    tid = p.management.tasks.create(ALICE, fid, '{"message": "x"}', "builtin",
                                    [DataOwners("in", ["alice"])], [DataOwners("out", ["bob"])])
    alices_input = register_input(p, ALICE)
    with refused(Code.PERMISSION_DENIED):
        p.management.tasks.assign(BOB, tid, [DataAssignment("in", alices_input)], [])


def test_file_must_be_owned_by_exactly_the_declared_owners(p: Platform) -> None:
    fid = register_function(p)
    tid = p.management.tasks.create(ALICE, fid, '{"message": "x"}', "builtin",
                                    [DataOwners("in", ["alice", "bob"])],
                                    [DataOwners("out", ["bob"])])
    only_alices = register_input(p, ALICE)
    with refused(Code.PERMISSION_DENIED):
        p.management.tasks.assign(ALICE, tid, [DataAssignment("in", only_alices)], [])


def test_non_participant_cannot_assign_read_or_approve(p: Platform) -> None:
    t = three_party_task(p)
    with refused(Code.PERMISSION_DENIED):
        p.management.tasks.get(MALLORY, t.task_id)
    with refused(Code.PERMISSION_DENIED):
        p.management.tasks.approve(MALLORY, t.task_id)


def test_a_data_name_is_assigned_once(p: Platform) -> None:
    fid = register_function(p)
    tid = p.management.tasks.create(ALICE, fid, '{"message": "x"}', "builtin",
                                    [DataOwners("in", ["alice"])], [DataOwners("out", ["bob"])])
    p.management.tasks.assign(ALICE, tid, [DataAssignment("in", register_input(p, ALICE))], [])
    with refused(Code.PERMISSION_DENIED):
        p.management.tasks.assign(ALICE, tid, [DataAssignment("in", register_input(p, ALICE))],
                                  [])


def test_data_cannot_be_swapped_once_everything_is_assigned(p: Platform) -> None:
    t = three_party_task(p)
    assert p.task(t.task_id).status is TaskStatus.DATA_ASSIGNED
    with refused(Code.UNKNOWN, "failed to assign data to task"):
        p.management.tasks.assign(ALICE, t.task_id,
                                  [DataAssignment("in", register_input(p, ALICE))], [])


def test_an_output_already_written_cannot_be_assigned_again(p: Platform) -> None:
    """Spec Q9 fix: an output is single-use, so nobody overwrites a result."""
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.report("executor-1", t.task_id, TaskResult(ok=True, tags_map={"out": bytes(16)}))
    tid = p.management.tasks.create(ALICE, t.function_id, '{"message": "again"}', "builtin",
                                    [DataOwners("in", ["alice"])], [DataOwners("out", ["bob"])])
    with refused(Code.PERMISSION_DENIED):
        p.management.tasks.assign(BOB, tid, [], [DataAssignment("out", t.output_id)])


# -- approval and invocation ---------------------------------------------------
def test_task_does_not_run_before_every_participant_approved(p: Platform) -> None:
    t = three_party_task(p)
    p.management.tasks.approve(ALICE, t.task_id)
    p.management.tasks.approve(BOB, t.task_id)
    assert p.task(t.task_id).status is TaskStatus.DATA_ASSIGNED
    with refused(Code.UNKNOWN, "failed to invoke task"):
        p.invoke(ALICE, t.task_id)
    assert p.pull("executor-1") is None
    p.management.tasks.approve(FUNCTION_OWNER, t.task_id)
    assert p.task(t.task_id).status is TaskStatus.APPROVED
    p.invoke(ALICE, t.task_id)
    assert p.task(t.task_id).status is TaskStatus.STAGED


def test_approval_before_all_data_is_assigned_is_refused(p: Platform) -> None:
    fid = register_function(p)
    tid = p.management.tasks.create(ALICE, fid, '{"message": "x"}', "builtin",
                                    [DataOwners("in", ["alice"])], [DataOwners("out", ["bob"])])
    with refused(Code.UNKNOWN, "failed to approve task"):
        p.management.tasks.approve(ALICE, tid)


def test_only_the_creator_invokes(p: Platform) -> None:
    t = three_party_task(p)
    approve_all(p, t)
    for who in (BOB, FUNCTION_OWNER, admin()):
        with refused(Code.PERMISSION_DENIED):
            p.invoke(who, t.task_id)


def test_single_party_task_needs_no_separate_approval(p: Platform) -> None:
    """Teaclave's auto-advance: a task whose only participant is its creator runs at once."""
    fid = register_function(p, public=True)  # a public function's owner is no participant
    tid = p.management.tasks.create(ALICE, fid, '{"message": "x"}', "builtin",
                                    [DataOwners("in", ["alice"])], [DataOwners("out", ["alice"])])
    p.management.tasks.assign(ALICE, tid, [DataAssignment("in", register_input(p, ALICE))],
                              [DataAssignment("out", register_output(p, ALICE))])
    p.invoke(ALICE, tid)
    assert p.task(tid).status is TaskStatus.STAGED


def test_disabled_function_is_not_invoked_even_when_approved(p: Platform) -> None:
    t = three_party_task(p)
    approve_all(p, t)
    p.management.functions.disable(FUNCTION_OWNER, t.function_id)
    with refused(Code.PERMISSION_DENIED):
        p.invoke(ALICE, t.task_id)


def test_usage_quota_caps_invocations(p: Platform) -> None:
    first = three_party_task(p, quota=1)
    approve_all(p, first)
    p.invoke(ALICE, first.task_id)
    tid = p.management.tasks.create(ALICE, first.function_id, '{"message": "again"}', "builtin",
                                    [DataOwners("in", ["alice"])], [DataOwners("out", ["bob"])])
    p.management.tasks.assign(ALICE, tid, [DataAssignment("in", register_input(p, ALICE))], [])
    p.management.tasks.assign(BOB, tid, [], [DataAssignment("out", register_output(p, BOB))])
    for who in (ALICE, BOB, FUNCTION_OWNER):
        p.management.tasks.approve(who, tid)
    with refused(Code.UNKNOWN, "function quota has been used up"):
        p.invoke(ALICE, tid)
    assert p.task(tid).status is TaskStatus.APPROVED


def test_a_task_is_invoked_once(p: Platform) -> None:
    t = staged_task(p)
    with refused(Code.UNKNOWN, "failed to invoke task"):
        p.invoke(ALICE, t.task_id)


# -- cancel ----------------------------------------------------------------------
def test_cancel_before_staging_says_so(p: Platform) -> None:
    t = three_party_task(p)
    p.cancel(ALICE, t.task_id)
    task = p.task(t.task_id)
    assert (task.status, task.result) == (TaskStatus.CANCELED, TaskResult.err(CANCELED_EARLY))


def test_canceled_staged_task_is_never_leased(p: Platform) -> None:
    t = staged_task(p)
    p.cancel(ALICE, t.task_id)
    assert p.task(t.task_id).result == TaskResult.err(CANCELED_LATE)
    assert p.pull("executor-1") is None


def test_cancel_is_final(p: Platform) -> None:
    t = staged_task(p)
    p.cancel(admin(), t.task_id)  # the platform administrator may cancel any task
    with refused(Code.UNKNOWN, "failed to cancel task, reason: task has already been canceled"):
        p.cancel(ALICE, t.task_id)
    for step in (lambda: p.management.tasks.approve(ALICE, t.task_id),
                 lambda: p.invoke(ALICE, t.task_id)):
        with refused(Code.UNKNOWN):
            step()
    assert p.task(t.task_id).status is TaskStatus.CANCELED


def test_participant_other_than_the_creator_cannot_cancel(p: Platform) -> None:
    t = staged_task(p)
    with refused(Code.PERMISSION_DENIED):
        p.cancel(BOB, t.task_id)
    assert p.task(t.task_id).status is TaskStatus.STAGED


# -- the whole machine, as a property -------------------------------------------
_ORDER = [TaskStatus.CREATED, TaskStatus.DATA_ASSIGNED, TaskStatus.APPROVED, TaskStatus.STAGED]
_PEOPLE = {"alice": ALICE, "bob": BOB, "fo": FUNCTION_OWNER, "mallory": MALLORY}
_STEP = st.tuples(st.sampled_from(["approve", "invoke", "cancel", "get"]),
                  st.sampled_from(sorted(_PEOPLE)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_STEP, max_size=12))
def test_any_sequence_of_calls_keeps_the_rules(steps: list[tuple[str, str]]) -> None:
    """Whatever anybody calls in whatever order: the status never goes back, a task
    is staged only once everyone approved it, and only its creator staged it."""
    with tempfile.TemporaryDirectory() as tmp:
        p = platform(Path(tmp))
        t = three_party_task(p)
        before = p.task(t.task_id)
        for action, name in steps:
            who = _PEOPLE[name]
            try:
                if action == "approve":
                    p.management.tasks.approve(who, t.task_id)
                elif action == "invoke":
                    p.invoke(who, t.task_id)
                elif action == "cancel":
                    p.cancel(who, t.task_id)
                else:
                    p.management.tasks.get(who, t.task_id)
                accepted = True
            except ServiceError:
                accepted = False
            after = p.task(t.task_id)
            if before.status is TaskStatus.CANCELED:
                assert after.status is TaskStatus.CANCELED
                assert not accepted or action == "get"
            elif after.status is not TaskStatus.CANCELED:
                assert _ORDER.index(after.status) >= _ORDER.index(before.status)
            if after.status is TaskStatus.STAGED and before.status is not TaskStatus.STAGED:
                assert (action, name) == ("invoke", "alice")
                assert set(after.approved_users) == set(after.participants)
            if name == "mallory":
                assert not accepted
            before = after

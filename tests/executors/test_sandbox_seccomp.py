"""The seccomp program, run through a small classic-BPF interpreter."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confide.executors._sandbox._seccomp import (
    ALLOWED,
    CLONE_THREAD,
    KILLED,
    RET_ALLOW,
    RET_KILL_PROCESS,
    compile_policy,
)
from confide.executors._sandbox._syscalls import AUDIT_ARCH_X86_64, X86_64

PROGRAM = compile_policy()
EPERM = 0x00050000 | 1
ENOSYS = 0x00050000 | 38
ENOTTY = 0x00050000 | 25
CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
PTHREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | 0x3D0000
FORK_FLAGS = 0x01200000 | 17  # CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD


JOB_SOCKET = 7
WAITING = compile_policy(job_socket=JOB_SOCKET)  # a pre-started sandbox's program


def evaluate(
    nr: int, args: tuple[int, ...] = (), arch: int = AUDIT_ARCH_X86_64, program: bytes = PROGRAM
) -> int:
    """Run the program on one ``struct seccomp_data``; return the action."""
    full = (list(args) + [0] * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, arch, 0, *full)
    insns = [struct.unpack_from("<HBBI", program, i) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    for _ in range(len(insns) + 1):
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            (acc,) = struct.unpack_from("<I", data, k)
            pc += 1
        elif code == 0x06:
            return k
        elif code in (0x15, 0x35, 0x45):
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("program did not return")


def test_program_is_whole_instructions_within_bpf_limits() -> None:
    for program in (PROGRAM, WAITING):
        assert len(program) % 8 == 0
        assert len(program) // 8 <= 4096


def test_allow_and_kill_lists_do_not_overlap_and_are_known() -> None:
    assert not ALLOWED & KILLED
    assert (ALLOWED | KILLED) <= set(X86_64)


def test_syscall_numbers_match_the_kernel_header() -> None:
    header = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    # linux-libc-dev is in scripts/system-packages.txt: make test installs it.
    assert header.exists(), "linux-libc-dev headers not installed"
    numbers = dict(re.findall(r"#define __NR_(\w+) (\d+)", header.read_text()))
    for name, nr in X86_64.items():
        assert int(numbers[name]) == nr, name


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_allowed_calls_are_allowed(name: str) -> None:
    assert evaluate(X86_64[name]) == RET_ALLOW


@pytest.mark.parametrize("name", sorted(KILLED))
def test_escape_primitives_kill_the_process(name: str) -> None:
    assert evaluate(X86_64[name]) == RET_KILL_PROCESS


@pytest.mark.parametrize(
    "name", ["socket", "connect", "bind", "socketpair", "kill", "setrlimit", "fork", "vfork",
             "memfd_create", "seccomp", "personality", "wait4", "pidfd_open"],
)  # fmt: skip
def test_other_calls_fail_with_eperm(name: str) -> None:
    assert evaluate(X86_64[name]) == EPERM


def test_clone3_is_enosys_so_libc_falls_back_to_clone() -> None:
    assert evaluate(X86_64["clone3"]) == ENOSYS


def test_clone_for_a_thread_is_allowed() -> None:
    assert evaluate(X86_64["clone"], (PTHREAD_FLAGS,)) == RET_ALLOW


def test_clone_for_a_process_is_refused() -> None:
    assert evaluate(X86_64["clone"], (FORK_FLAGS,)) == EPERM


@pytest.mark.parametrize("ns_flag", [0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000,
                                     0x20000000, 0x40000000])  # fmt: skip
def test_clone_with_a_new_namespace_kills(ns_flag: int) -> None:
    assert evaluate(X86_64["clone"], (PTHREAD_FLAGS | ns_flag,)) == RET_KILL_PROCESS
    assert evaluate(X86_64["clone"], (FORK_FLAGS | ns_flag,)) == RET_KILL_PROCESS


def test_ioctl_only_tty_probes_and_fd_flags() -> None:
    assert evaluate(X86_64["ioctl"], (1, 0x5401)) == RET_ALLOW  # TCGETS
    assert evaluate(X86_64["ioctl"], (1, 0x5412)) == ENOTTY  # TIOCSTI
    assert evaluate(X86_64["ioctl"], (1, 0x4B3A)) == ENOTTY  # KDSETMODE


def test_prctl_only_names_and_dumpable_query() -> None:
    assert evaluate(X86_64["prctl"], (15,)) == RET_ALLOW
    assert evaluate(X86_64["prctl"], (22,)) == EPERM  # PR_SET_SECCOMP
    assert evaluate(X86_64["prctl"], (4,)) == EPERM  # PR_SET_DUMPABLE


def test_prlimit64_reads_allowed_writes_refused() -> None:
    assert evaluate(X86_64["prlimit64"], (0, 9, 0, 0x7FFF0000)) == RET_ALLOW
    assert evaluate(X86_64["prlimit64"], (0, 9, 0x7FFF0000, 0)) == EPERM
    assert evaluate(X86_64["prlimit64"], (0, 9, 0x7FFF_0000_0000_0000, 0)) == EPERM


def test_foreign_architecture_and_x32_calls_kill() -> None:
    assert evaluate(X86_64["read"], arch=0x40000003) == RET_KILL_PROCESS  # i386
    assert evaluate(0x40000000 + X86_64["read"]) == RET_KILL_PROCESS


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_every_number_gets_a_decision_and_unknown_ones_never_allowed(nr: int) -> None:
    action = evaluate(nr if nr < 0x80000000 else nr - 0x100000000)
    known = {X86_64[n] for n in ALLOWED} | {X86_64[n] for n in ("clone", "ioctl", "prctl",
                                                                  "prlimit64")}  # fmt: skip
    if nr not in known:
        assert action != RET_ALLOW


def test_cold_sandbox_cannot_recvmsg_at_all() -> None:
    for fd in (0, 3, JOB_SOCKET):
        assert evaluate(X86_64["recvmsg"], (fd,)) == EPERM


def test_pre_started_sandbox_may_recvmsg_on_its_job_socket_only() -> None:
    assert evaluate(X86_64["recvmsg"], (JOB_SOCKET,), program=WAITING) == RET_ALLOW
    assert evaluate(X86_64["recvmsg"], (JOB_SOCKET + 1,), program=WAITING) == EPERM
    assert evaluate(X86_64["recvmsg"], (0,), program=WAITING) == EPERM


@pytest.mark.parametrize(
    "name", ["socket", "socketpair", "connect", "bind", "listen", "accept", "sendmsg", "sendto",
             "recvfrom", "setrlimit", "seccomp", "pidfd_open"],
)  # fmt: skip
def test_pre_started_sandbox_gains_no_other_socket_call(name: str) -> None:
    assert evaluate(X86_64[name], (JOB_SOCKET,), program=WAITING) == EPERM


def test_the_job_socket_rule_is_the_only_difference() -> None:
    for nr in range(0, 512):
        if nr != X86_64["recvmsg"]:
            for args in ((), (JOB_SOCKET,), (JOB_SOCKET, 0x5401), (0x00010000,)):
                assert evaluate(nr, args, program=WAITING) == evaluate(nr, args), nr


def test_job_socket_must_be_a_file_descriptor_number() -> None:
    with pytest.raises(ValueError, match="file descriptor"):
        compile_policy(job_socket=-1)


@given(st.integers(min_value=0, max_value=0xFFFFFFFF), st.integers(0, 2**64 - 1))
def test_pre_started_program_allows_no_unknown_number(nr: int, arg0: int) -> None:
    action = evaluate(nr if nr < 0x80000000 else nr - 0x100000000, (arg0,), program=WAITING)
    with_args = ("clone", "ioctl", "prctl", "prlimit64", "recvmsg")
    known = {X86_64[n] for n in ALLOWED} | {X86_64[n] for n in with_args}
    if nr not in known:
        assert action != RET_ALLOW

"""The function process's seccomp policy, compiled to a classic BPF program.

The worker compiles the program (pure code, no I/O) and hands the bytes to the
in-sandbox harness, which installs it with ``prctl(PR_SET_SECCOMP)`` before it
runs any function code. Decisions, in order:

1. a foreign architecture or an x32 call: kill the process;
2. calls in :data:`ALLOWED`: allowed;
3. calls allowed only with certain arguments (``clone`` for threads, a few
   ``ioctl`` and ``prctl`` requests, ``prlimit64`` reads and, in a pre-started
   sandbox only, ``recvmsg`` on its job socket): see ``_arg_rules``;
4. calls in :data:`KILLED` (escape primitives: ptrace, mounts, namespaces,
   keyrings, bpf, execve, ...): kill the whole process (``SIGSYS``);
5. ``clone3``: ``ENOSYS`` (its flags live in memory BPF cannot read; libc then
   falls back to ``clone``);
6. anything else: ``EPERM``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from ._syscalls import AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, X86_64

__all__ = ["ALLOWED", "KILLED", "compile_policy"]

EPERM = 1
ENOSYS = 38
ENOTTY = 25

# classic BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

RET_KILL_PROCESS = 0x80000000
RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000

# struct seccomp_data offsets
_OFF_NR = 0
_OFF_ARCH = 4


def _arg_lo(index: int) -> int:
    return 16 + 8 * index


def _arg_hi(index: int) -> int:
    return 20 + 8 * index


CLONE_THREAD = 0x00010000
#: CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
CLONE_NAMESPACE_FLAGS = (
    0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
)

#: Calls a CPython + numpy function needs once the interpreter has started.
ALLOWED: frozenset[str] = frozenset(
    """
    read write open close stat fstat lstat poll lseek mmap mprotect munmap brk
    rt_sigaction rt_sigprocmask rt_sigreturn pread64 pwrite64 readv writev access pipe
    select sched_yield mremap msync mincore madvise dup dup2 pause nanosleep getitimer
    alarm setitimer getpid sendfile exit uname fcntl flock fsync fdatasync truncate
    ftruncate getdents getcwd chdir fchdir rename mkdir rmdir creat link unlink symlink
    readlink chmod fchmod umask gettimeofday getrlimit getrusage sysinfo times getuid
    getgid geteuid getegid getppid getpgrp getgroups getresuid getresgid getpgid getsid
    rt_sigpending rt_sigtimedwait rt_sigsuspend sigaltstack utime statfs fstatfs
    getpriority sched_getparam sched_getscheduler sched_get_priority_max
    sched_get_priority_min sched_rr_get_interval gettid readahead tkill time futex
    sched_setaffinity sched_getaffinity getdents64 set_tid_address restart_syscall
    fadvise64 clock_gettime clock_getres clock_nanosleep exit_group epoll_wait
    epoll_ctl tgkill utimes mbind set_mempolicy get_mempolicy openat mkdirat newfstatat
    unlinkat renameat linkat symlinkat readlinkat fchmodat faccessat pselect6 ppoll
    set_robust_list get_robust_list utimensat epoll_pwait fallocate eventfd2
    epoll_create1 dup3 pipe2 preadv pwritev getcpu sched_getattr renameat2 getrandom
    membarrier copy_file_range preadv2 pwritev2 statx rseq close_range faccessat2
    epoll_pwait2
    """.split()
)

#: Escape primitives: reaching one of these is an attack, so the process dies.
KILLED: frozenset[str] = frozenset(
    """
    ptrace process_vm_readv process_vm_writev mount umount2 pivot_root chroot unshare
    setns keyctl add_key request_key bpf perf_event_open execve execveat kexec_load
    kexec_file_load init_module finit_module delete_module userfaultfd io_uring_setup
    io_uring_enter io_uring_register open_by_handle_at name_to_handle_at kcmp
    pidfd_getfd fsopen fsconfig fsmount fspick open_tree move_mount mount_setattr
    swapon swapoff reboot iopl ioperm quotactl acct settimeofday clock_settime adjtimex
    clock_adjtime syslog lookup_dcookie vhangup sethostname setdomainname uselib
    modify_ldt fanotify_init memfd_secret process_madvise process_mrelease
    """.split()
)

#: ioctl requests answered by the kernel (tty probes, close-on-exec, non-blocking).
_IOCTL_ALLOWED = (0x5401, 0x5413, 0x5421, 0x5450, 0x5451, 0x541B)
#: prctl options: PR_GET_DUMPABLE, PR_SET_NAME, PR_GET_NAME.
_PRCTL_ALLOWED = (3, 15, 16)


def _ins(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _ret(value: int) -> bytes:
    return _ins(_RET_K, 0, 0, value)


def _errno(code: int) -> int:
    return _RET_ERRNO | code


def _in_set_block(offset: int, values: Iterable[int], deny: int) -> list[bytes]:
    """``ld [offset]``; allow when the 32-bit word is in ``values``, else ``deny``."""
    vals = list(values)
    n = len(vals)
    block = [_ins(_LD_W_ABS, 0, 0, offset)]
    for i, v in enumerate(vals):
        block.append(_ins(_JEQ_K, n - i, 0, v))
    block.append(_ret(deny))
    block.append(_ret(RET_ALLOW))
    return block


def _clone_block() -> list[bytes]:
    return [
        _ins(_LD_W_ABS, 0, 0, _arg_lo(0)),
        _ins(_JSET_K, 0, 1, CLONE_NAMESPACE_FLAGS),
        _ret(RET_KILL_PROCESS),
        _ins(_JSET_K, 0, 1, CLONE_THREAD),
        _ret(RET_ALLOW),
        _ret(_errno(EPERM)),  # fork-like clone: no new processes
    ]


def _prlimit_block() -> list[bytes]:
    """Allow ``prlimit64`` only as a read (``new_limit == NULL``)."""
    return [
        _ins(_LD_W_ABS, 0, 0, _arg_lo(2)),
        _ins(_JEQ_K, 0, 3, 0),
        _ins(_LD_W_ABS, 0, 0, _arg_hi(2)),
        _ins(_JEQ_K, 0, 1, 0),
        _ret(RET_ALLOW),
        _ret(_errno(EPERM)),
    ]


def _arg_rules(job_socket: int | None) -> dict[str, list[bytes]]:
    rules = {
        "clone": _clone_block(),
        "ioctl": _in_set_block(_arg_lo(1), _IOCTL_ALLOWED, _errno(ENOTTY)),
        "prctl": _in_set_block(_arg_lo(0), _PRCTL_ALLOWED, _errno(EPERM)),
        "prlimit64": _prlimit_block(),
    }
    if job_socket is not None:
        # The kernel reads an int fd from the low 32 bits; the high half is ignored.
        rules["recvmsg"] = _in_set_block(_arg_lo(0), [job_socket], _errno(EPERM))
    return rules


def _on_nr(nr: int, block: list[bytes]) -> list[bytes]:
    if len(block) > 255:
        raise ValueError("seccomp rule block too long for a BPF jump")
    return [_ins(_JEQ_K, 0, len(block), nr), *block]


def compile_policy(*, job_socket: int | None = None) -> bytes:
    """Compile the policy for x86_64 into ``struct sock_filter[]`` bytes.

    Args:
        job_socket: the fd a pre-started sandbox receives its one job on:
            ``recvmsg`` is allowed on that fd number and no other. ``None``
            (a cold sandbox): ``recvmsg`` is refused like any other socket call.
            The harness closes the socket before any function code runs, and
            the function cannot make a socket, so afterwards nothing can be
            received on that number.
    """
    if job_socket is not None and not 0 <= job_socket < 1 << 31:
        raise ValueError("job_socket must be a file descriptor number")
    prog: list[bytes] = [
        _ins(_LD_W_ABS, 0, 0, _OFF_ARCH),
        _ins(_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        _ret(RET_KILL_PROCESS),
        _ins(_LD_W_ABS, 0, 0, _OFF_NR),
        _ins(_JGE_K, 0, 1, X32_SYSCALL_BIT),
        _ret(RET_KILL_PROCESS),
    ]
    for name in sorted(ALLOWED, key=X86_64.__getitem__):
        prog += _on_nr(X86_64[name], [_ret(RET_ALLOW)])
    for name, block in _arg_rules(job_socket).items():
        prog += _on_nr(X86_64[name], block)
    for name in sorted(KILLED, key=X86_64.__getitem__):
        prog += _on_nr(X86_64[name], [_ret(RET_KILL_PROCESS)])
    prog += _on_nr(X86_64["clone3"], [_ret(_errno(ENOSYS))])
    prog.append(_ret(_errno(EPERM)))
    if len(prog) > 4096:
        raise ValueError("seccomp program exceeds BPF_MAXINSNS")
    return b"".join(prog)

# expect: error seccomp
"""bpf(BPF_PROG_LOAD): loading programs into the kernel: killed."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(128)
    return str(libc.syscall(321, 5, attr, 128))

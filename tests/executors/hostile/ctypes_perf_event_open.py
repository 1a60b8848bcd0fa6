# expect: error seccomp
"""perf_event_open(2): kernel profiling, a classic local-root surface: killed."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(128)
    return str(libc.syscall(298, attr, 0, -1, -1, 0))

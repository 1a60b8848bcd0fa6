# expect: error seccomp
"""mount(2) a tmpfs over /sandbox: killed."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    return str(libc.mount(b"none", b"/sandbox", b"tmpfs", 0, None))

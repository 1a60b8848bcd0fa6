# expect: error seccomp
"""reboot(2) with the restart magic: killed (and host root is not ours anyway)."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    return str(libc.syscall(169, 0xFEE1DEAD, 672274793, 0x01234567, 0))

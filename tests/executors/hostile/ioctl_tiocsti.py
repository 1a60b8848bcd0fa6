# expect: result ENOTTY ENOTTY
"""TIOCSTI (push characters into a terminal's input) and TIOCLINUX on stdio: refused."""

import ctypes
import errno


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    out = []
    for request in (0x5412, 0x541C):
        ch = ctypes.c_char(b"x")
        libc.ioctl(0, request, ctypes.byref(ch))
        out.append(errno.errorcode.get(ctypes.get_errno(), "OK"))
    return " ".join(out)

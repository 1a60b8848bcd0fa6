# expect: result EPERM EPERM EPERM EPERM
"""prctl: become dumpable, allow any tracer, raise an ambient capability, drop no_new_privs."""

import ctypes
import errno


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    ulong = ctypes.c_ulong
    out = []
    for option, arg2, arg3 in ((4, 1, 0), (0x59616D61, 2**64 - 1, 0), (47, 2, 21), (38, 0, 0)):
        ctypes.set_errno(0)
        libc.prctl(option, ulong(arg2), ulong(arg3), ulong(0), ulong(0))
        out.append(errno.errorcode.get(ctypes.get_errno(), "OK"))
    return " ".join(out)

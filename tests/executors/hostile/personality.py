# expect: result EPERM EPERM
"""personality(2): READ_IMPLIES_EXEC / ADDR_NO_RANDOMIZE to weaken the process: refused."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    out = []
    for persona in (0x0400000, 0x0040000):
        libc.syscall(135, persona)
        out.append({1: "EPERM"}.get(ctypes.get_errno(), str(ctypes.get_errno())))
    return " ".join(out)

# expect: result setuid:EPERM setgid:EPERM setgroups:EPERM setresuid:EPERM
"""Become root or join groups: the set*id calls are refused."""

import errno
import os


def entrypoint(argv):
    out = []
    for name, call in (("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0)),
                       ("setgroups", lambda: os.setgroups([0])),
                       ("setresuid", lambda: os.setresuid(0, 0, 0))):
        try:
            call()
            out.append(f"{name}:DONE")
        except OSError as e:
            out.append(f"{name}:{errno.errorcode[e.errno]}")
    return " ".join(out)

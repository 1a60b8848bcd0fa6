# expect: result /dev/null:EPERM:EPERM /dev/zero:EPERM:EPERM /dev/urandom:EPERM:EPERM
"""chmod and chown the device nodes: they are the host's (binds), owned by host root.

As host root, a chmod here changed the host's /dev/null; the sandbox's own uid owns none of them.
"""

import errno
import os


def _try(change):
    try:
        change()
    except OSError as e:
        return errno.errorcode[e.errno]
    return "CHANGED"


def entrypoint(argv):
    out = []
    for path in ("/dev/null", "/dev/zero", "/dev/urandom"):
        chmod = _try(lambda p=path: os.chmod(p, 0o777))
        chown = _try(lambda p=path: os.chown(p, 65534, 65534))
        out.append(f"{path}:{chmod}:{chown}")
    return " ".join(out)

# expect: result EPERM EPERM
"""mknod a /dev/mem (1,1) or /dev/sda (8,0) node in the private /tmp: refused."""

import errno
import os
import stat


def entrypoint(argv):
    out = []
    for name, dev in (("mem", os.makedev(1, 1)), ("sda", os.makedev(8, 0))):
        try:
            os.mknod(f"/tmp/{name}", stat.S_IFCHR | 0o666, dev)
            out.append("CREATED")
        except OSError as e:
            out.append(errno.errorcode[e.errno])
    return " ".join(out)

# expect: result /dev/shm/x:ENOENT /dev/x:EROFS mkdir:EROFS null,urandom,zero
"""Fill /dev and /dev/shm (uncapped tmpfs before): there is no /dev/shm and /dev is read-only."""

import errno
import os


def entrypoint(argv):
    out = []
    for path in ("/dev/shm/x", "/dev/x"):
        try:
            with open(path, "wb") as f:
                f.write(b"x" * (1 << 20))
            out.append(f"{path}:WRITTEN")
        except OSError as e:
            out.append(f"{path}:{errno.errorcode[e.errno]}")
    try:
        os.mkdir("/dev/shm")
        out.append("mkdir:DONE")
    except OSError as e:
        out.append(f"mkdir:{errno.errorcode[e.errno]}")
    out.append(",".join(sorted(os.listdir("/dev"))))
    return " ".join(out)

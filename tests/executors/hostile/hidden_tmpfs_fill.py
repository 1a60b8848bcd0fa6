# expect: result EROFS
"""Write into the empty tmpfs that hides the interpreter's site-packages: it is read-only."""

import errno
import os
import sysconfig


def entrypoint(argv):
    hidden = os.path.join(sysconfig.get_paths()["stdlib"], "site-packages")
    try:
        with open(os.path.join(hidden, "fill"), "wb") as f:
            f.write(b"x" * (1 << 20))
    except OSError as e:
        return errno.errorcode[e.errno]
    return "WRITTEN"

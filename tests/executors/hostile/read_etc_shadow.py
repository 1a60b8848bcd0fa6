# expect: result FileNotFoundError ['ld.so.cache']
"""Read /etc/shadow and list /etc."""

import os


def entrypoint(argv):
    try:
        return open("/etc/shadow").read()
    except OSError as e:
        return f"{type(e).__name__} {sorted(os.listdir('/etc'))}"

# expect: result 0
"""Search the environment for anything that looks like a key, token or password."""

import os


def entrypoint(argv):
    marks = ("KEY", "SECRET", "TOKEN", "PASS")
    hits = [k for k in os.environ if any(m in k.upper() for m in marks)]
    hits += [v for v in os.environ.values() if "CANARY" in v]
    return str(len(hits))

# expect: result 0
"""Search the environment for anything that looks like a key, token or password."""
import os


def entrypoint(argv):
    hits = [k for k in os.environ if any(s in k.upper() for s in ("KEY", "SECRET", "TOKEN", "PASS"))]
    hits += [v for v in os.environ.values() if "CANARY" in v]
    return str(len(hits))

# expect: result RuntimeError True
"""Thread bomb: RLIMIT_NPROC stops it at a few dozen threads."""

import threading
import time


def entrypoint(argv):
    n = 0
    try:
        for _ in range(100_000):
            threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
            n += 1
    except RuntimeError as e:
        return f"{type(e).__name__} {n < 64}"
    return f"started {n}"

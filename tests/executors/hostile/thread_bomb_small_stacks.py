# expect: result stopped True
"""200 threads with small stacks (so RLIMIT_AS is not what stops them): RLIMIT_NPROC on the
sandbox's own host uid does. As host root, the kernel skipped that limit and all 200 started."""

import threading
import time


def entrypoint(argv):
    threading.stack_size(256 * 1024)
    started = 0
    try:
        for _ in range(200):
            threading.Thread(target=time.sleep, args=(3,), daemon=True).start()
            started += 1
    except RuntimeError:
        return f"stopped {started < 32}"
    return f"started {started}"

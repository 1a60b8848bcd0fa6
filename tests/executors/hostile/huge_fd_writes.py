# expect: result done
# args: {"save_log": "true"}
"""Write 100 MB to fd 1 and 20 MB to fd 2 past the log streams: the fds go nowhere."""

import os


def entrypoint(argv):
    block = b"y" * (1 << 20)
    for _ in range(100):
        os.write(1, block)
    for _ in range(20):
        os.write(2, block)
    return "done"

# expect: result done
# args: {"save_log": "true"}
"""Print millions of lines and write 100 MB to fd 1 and 2: logs are capped, fds go nowhere."""

import os


def entrypoint(argv):
    for i in range(200_000):
        print("line", i)
    block = b"y" * (1 << 20)
    for _ in range(100):
        os.write(1, block)
    for _ in range(20):
        os.write(2, block)
    return "done"

# expect: error cpu
# limits: python_cpu_seconds=1 python_wall_seconds=20
"""Spin forever after ignoring SIGXCPU: the hard limit's SIGKILL ends it."""

import signal


def entrypoint(argv):
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    while True:
        pass

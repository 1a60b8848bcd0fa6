# expect: error time
# limits: python_wall_seconds=1.5
"""Sleep forever (uses no CPU): the worker's wall clock ends it."""

import time


def entrypoint(argv):
    time.sleep(10**6)

# expect: error cpu
# limits: python_cpu_seconds=1 python_wall_seconds=20
"""Spin forever: RLIMIT_CPU (SIGXCPU) ends it."""


def entrypoint(argv):
    while True:
        pass

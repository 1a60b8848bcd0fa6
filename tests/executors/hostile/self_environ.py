# expect: result OMP_NUM_THREADS,OPENBLAS_NUM_THREADS,PATH,PWD
"""Read /proc/self/environ and os.environ: nothing of the worker's environment."""

import os


def entrypoint(argv):
    raw = open("/proc/self/environ", "rb").read().decode()
    names = {kv.split("=", 1)[0] for kv in raw.split("\0") if kv} | set(os.environ)
    passthrough = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    return ",".join(sorted(n for n in names if n not in passthrough))

# expect: result OMP_NUM_THREADS,OPENBLAS_NUM_THREADS,PATH,PWD
"""Read /proc/1/environ: pid 1 is the function itself, started with a cleared environment."""


def entrypoint(argv):
    raw = open("/proc/1/environ", "rb").read().decode()
    names = [kv.split("=", 1)[0] for kv in raw.split("\0") if kv]
    passthrough = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    return ",".join(sorted(n for n in names if n not in passthrough))

# expect: result FileNotFoundError FileNotFoundError 0
# args: {"pid": "$WORKER_PID"}
"""Read the worker's /proc/<pid>/mem and environ: the worker is outside the pid namespace."""


def entrypoint(argv):
    import os

    pid = argv[1]
    out = []
    for leaf in ("mem", "environ"):
        try:
            open(f"/proc/{pid}/{leaf}", "rb").read(16)
            out.append("read")
        except OSError as e:
            out.append(type(e).__name__)
    out.append(str(os.getppid()))
    return " ".join(out)

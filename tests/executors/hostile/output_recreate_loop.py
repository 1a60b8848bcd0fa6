# expect: error output
# outputs: out
"""Re-create one output again and again: the run's total output budget still runs out."""


def entrypoint(argv):
    for _ in range(100):
        with teaclave_open("out", "wb") as f:  # noqa: F821 - a sandbox builtin
            f.write(b"x" * (512 * 1024))
    return "written"

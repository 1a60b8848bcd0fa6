# expect: error output
# outputs: out
"""Write 8 MiB into an output capped at 1 MiB."""


def entrypoint(argv):
    with teaclave_open("out", "wb") as f:  # noqa: F821 - a sandbox builtin
        for _ in range(128):
            f.write(b"x" * 65536)
    return "written"

# expect: result OSError 28
"""Fill the private /tmp (tmpfs memory) file after file: its size is capped."""


def entrypoint(argv):
    block = b"x" * (256 * 1024)
    try:
        for i in range(10_000):
            with open(f"/tmp/f{i}", "wb") as f:
                for _ in range(3):
                    f.write(block)
    except OSError as e:
        return f"{type(e).__name__} {e.errno}"
    return "filled"

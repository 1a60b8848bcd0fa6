# expect: result 30 30 30 30
"""Write outside the private /tmp: the root, /etc, the libraries, the harness."""


def entrypoint(argv):
    out = []
    for path in ("/evil", "/etc/evil", "/usr/lib/x86_64-linux-gnu/evil", "/sandbox/harness.py"):
        try:
            with open(path, "w") as f:
                f.write("x")
            out.append("written")
        except OSError as e:
            out.append(str(e.errno))
    return " ".join(out)

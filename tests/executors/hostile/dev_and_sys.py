# expect: result FileNotFoundError FileNotFoundError FileNotFoundError
"""Reach host devices and /sys: /dev is minimal and /sys absent."""


def entrypoint(argv):
    out = []
    for path in ("/dev/mem", "/dev/kmsg", "/sys/kernel"):
        try:
            open(path, "rb").read(1)
            out.append("opened")
        except OSError as e:
            out.append(type(e).__name__)
    return " ".join(out)

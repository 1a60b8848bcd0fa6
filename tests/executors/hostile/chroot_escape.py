# expect: error seccomp
"""The classic chroot escape (chroot into a subdirectory, then walk up): chroot(2) kills."""

import os


def entrypoint(argv):
    os.makedirs("/tmp/jail", exist_ok=True)
    fd = os.open("/", os.O_RDONLY)
    os.chroot("/tmp/jail")
    os.fchdir(fd)
    for _ in range(64):
        os.chdir("..")
    os.chroot(".")
    return str(os.listdir("/"))

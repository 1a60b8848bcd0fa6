# expect: error memory
"""Allocate far more than RLIMIT_AS allows."""


def entrypoint(argv):
    hog = []
    while True:
        hog.append(b"x" * (64 * 1024 * 1024))

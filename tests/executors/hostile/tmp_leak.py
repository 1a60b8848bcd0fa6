# expect: result fresh
# runs: 2
"""Leave a file in /tmp for the next task: every run gets a new, empty /tmp."""

import os


def entrypoint(argv):
    if os.listdir("/tmp"):
        return "leaked: " + ",".join(os.listdir("/tmp"))
    with open("/tmp/confide-leak", "w") as f:
        f.write("from the previous task")
    return "fresh"

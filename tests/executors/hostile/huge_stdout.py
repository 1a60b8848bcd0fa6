# expect: error log
# args: {"save_log": "true"}
"""Print 200 000 lines with save_log on: the task ends at the log line cap."""


def entrypoint(argv):
    for i in range(200_000):
        print("line", i)
    return "done"

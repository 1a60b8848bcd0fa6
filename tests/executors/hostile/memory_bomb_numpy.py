# expect: error memory
"""Ask numpy for a 80 GB array."""

import numpy as np


def entrypoint(argv):
    return str(np.ones(10**10).sum())

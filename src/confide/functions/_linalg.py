"""rulinalg's floating-point operation order, vectorised with numpy.

rulinalg computes ``Matrix * Vector`` one row at a time with ``utils::dot``: an
eight-way unrolled accumulation ``p_k += x[8c+k]·y[8c+k]``, then
``s = s + p0 + p4; s = s + p1 + p5; …`` (left to right), then the remainder
sequentially. Reproducing that order makes results bit-identical to Teaclave.
numpy is used only for element-wise IEEE operations, whose results do not
depend on vectorisation.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["exp_each", "matvec", "matvec_transposed", "unrolled_sum"]

F64 = npt.NDArray[np.float64]


def unrolled_sum(products: F64) -> F64:
    """Reduce ``products`` (reduction axis 0) in rulinalg ``dot`` order.

    ``np.add.accumulate`` adds strictly left to right, so each partial sum
    ``p_k`` sees exactly the additions Rust performs.
    """
    length, width = products.shape
    full = length - length % 8
    zero = np.zeros((1, width))
    p = [np.add.accumulate(np.vstack([zero, products[k:full:8]]), axis=0)[-1] for k in range(8)]
    s = np.zeros(width)
    for a, b in ((0, 4), (1, 5), (2, 6), (3, 7)):
        s = (s + p[a]) + p[b]
    for i in range(full, length):
        s = s + products[i]
    return s


def matvec(x: F64, w: F64) -> F64:
    """``x * w`` for an ``mxn`` matrix and an ``n`` vector, rulinalg order."""
    return unrolled_sum((x * w[None, :]).T)


def matvec_transposed(x: F64, d: F64) -> F64:
    """``x.transpose() * d`` for an ``mxn`` matrix and an ``m`` vector, rulinalg order."""
    return unrolled_sum(x * d[:, None])


def exp_each(values: F64) -> F64:
    """Element-wise ``exp`` through the C library (numpy's SIMD ``exp`` differs by 1 ulp)."""
    return np.array([math.exp(v) for v in values.tolist()], dtype=np.float64)

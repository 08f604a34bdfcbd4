"""Winograd minimal filtering F(m x m, 3 x 3) (Lavin & Gray 2016): the transform matrices and the
filter transform, shared by qc-winograd (which rewrites 3x3 convolutions) and its kernels.

A 3x3 convolution's output tile of m x m pixels is ``Y = A^T [(G g G^T) . (B^T d B)] A`` for the
(m + 2) x (m + 2) input tile ``d`` and the filter ``g``: (m + 2)^2 multiplications per tile and
channel pair instead of 9 m^2, i.e. 2.25x fewer for m = 2 and 4x fewer for m = 4.  Over channels the
elementwise product becomes (m + 2)^2 independent matrix products [tiles, C] x [C, F].
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Transform(NamedTuple):
    """The matrices of F(m, 3): B^T [a, a], G [a, 3], A^T [m, a], with a = m + 2."""

    bt: np.ndarray
    g: np.ndarray
    at: np.ndarray

    @property
    def m(self) -> int:
        return self.at.shape[0]

    @property
    def alpha(self) -> int:
        return self.bt.shape[0]


# Interpolation points 0, 1, -1 (m = 2) and 0, +-1, +-2 (m = 4), and infinity.
_TRANSFORMS = {
    2: Transform(np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
                 np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64),
                 np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)),
    4: Transform(np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64),
                 np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                           [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
                 np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                          np.float64)),
}
TILES = tuple(_TRANSFORMS)


def transform(m: int) -> Transform:
    return _TRANSFORMS[m]


def filter_transform(w: np.ndarray, m: int) -> np.ndarray:
    """A filter [F, 3, 3, C] (channels last) as the (m + 2)^2 matrices [a * a, C, F] that multiply the
    transformed input tiles: ``U[xi * a + nu, c, f] = (G w[f, :, :, c] G^T)[xi, nu]``, in float64, rounded once."""
    t = transform(m)
    u = np.einsum("xk,fklc,yl->xycf", t.g, w.astype(np.float64), t.g)
    return np.ascontiguousarray(u.reshape(t.alpha * t.alpha, *u.shape[2:]).astype(np.float32))


def input_coefficients(m: int) -> np.ndarray:
    """[a, a, a, a]: ``V[xi, nu] = sum_ij c[xi, nu, i, j] d[i, j]`` (B^T d B as one table)."""
    bt = transform(m).bt
    return np.einsum("xi,yj->xyij", bt, bt).astype(np.float32)


def output_coefficients(m: int) -> np.ndarray:
    """[m, m, a, a]: ``Y[r, s] = sum_{xi nu} c[r, s, xi, nu] M[xi, nu]`` (A^T M A as one table)."""
    at = transform(m).at
    return np.einsum("rx,sy->rsxy", at, at).astype(np.float32)

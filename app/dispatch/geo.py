"""Distances on the sphere, in metres.

``haversine_m`` is the reference; the compiled kernel (``kernel.py``) repeats its operations
in the same order with the same libm functions, so both give the same bits. numpy's
vectorised ``arcsin`` may differ in the last bit, so ``haversine_pairs`` is for matrices that
are not compared with the scalar path (day plans, benchmarks).
"""

from math import asin, cos, radians, sin, sqrt

import numpy as np
from numpy.typing import NDArray

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points given in degrees."""
    p1, p2 = radians(lat1), radians(lat2)
    a, b = sin((p2 - p1) / 2), sin(radians(lon2 - lon1) / 2)
    # Squares as products: ``x ** 2`` goes through libm's pow, which is not always x * x.
    h = a * a + cos(p1) * cos(p2) * (b * b)
    return 2 * EARTH_RADIUS_M * asin(min(1.0, sqrt(h)))


def haversine_pairs(
    lat1: NDArray[np.float64] | float,
    lon1: NDArray[np.float64] | float,
    lat2: NDArray[np.float64] | float,
    lon2: NDArray[np.float64] | float,
) -> NDArray[np.float64]:
    """Great-circle metres between points, elementwise with numpy broadcasting."""
    p1 = np.radians(lat1)
    p2 = np.radians(lat2)
    h = np.square(np.sin((p2 - p1) / 2)) + np.cos(p1) * np.cos(p2) * np.square(
        np.sin(np.radians(np.subtract(lon2, lon1)) / 2)
    )
    metres: NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return metres

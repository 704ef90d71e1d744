"""Travel time: a small interface, and the straight-line estimate behind it.

Distance on the sphere times a detour factor, over a speed. A road-network source (an OSRM
server, say) can implement ``TravelTime`` and replace it without touching the engine.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from app.dispatch.geo import EARTH_RADIUS_M, haversine_m


class TravelTime(Protocol):
    def seconds(self, lat1: float, lon1: float, lat2: float, lon2: float) -> float:
        """Travel time from one point to another."""
        ...

    def min_seconds(self, metres: float) -> float:
        """A lower bound on the travel time over a great-circle distance (for exact search)."""
        ...

    def seconds_many(
        self, lat: NDArray[np.float64], lon: NDArray[np.float64], to_lat: float, to_lon: float
    ) -> NDArray[np.float64]:
        """Travel times from many points to one (vectorised)."""
        ...


@dataclass(frozen=True, slots=True)
class StraightLine:
    """Great-circle metres x detour / speed. 1.35 and 4.2 m/s (an e-bike in town) by default."""

    speed_mps: float = 4.2
    detour: float = 1.35

    def min_seconds(self, metres: float) -> float:
        return metres * self.detour / self.speed_mps

    def seconds(self, lat1: float, lon1: float, lat2: float, lon2: float) -> float:
        return haversine_m(lat1, lon1, lat2, lon2) * self.detour / self.speed_mps

    def seconds_many(
        self, lat: NDArray[np.float64], lon: NDArray[np.float64], to_lat: float, to_lon: float
    ) -> NDArray[np.float64]:
        return haversine_many(lat, lon, to_lat, to_lon) * (self.detour / self.speed_mps)


def haversine_many(
    lat: NDArray[np.float64], lon: NDArray[np.float64], to_lat: float, to_lon: float
) -> NDArray[np.float64]:
    """Great-circle metres from each (lat, lon) to one point."""
    p1 = np.radians(lat)
    p2 = np.radians(to_lat)
    h = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(to_lon - lon) / 2) ** 2
    )
    metres: NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return metres

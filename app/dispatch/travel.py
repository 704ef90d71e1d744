"""Travel time: a small interface, and the straight-line estimate behind it.

Distance on the sphere times a detour factor, over a speed. A road-network source (an OSRM
server, say) can implement ``TravelTime`` and replace it without touching the engine.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from app.dispatch.geo import haversine_m, haversine_pairs

Floats = NDArray[np.float64]


class TravelTime(Protocol):
    def seconds(self, lat1: float, lon1: float, lat2: float, lon2: float) -> float:
        """Travel time from one point to another."""
        ...

    def min_seconds(self, metres: float) -> float:
        """A lower bound on the travel time over a great-circle distance (for exact search)."""
        ...

    def pairs(
        self,
        from_lat: Floats | float,
        from_lon: Floats | float,
        to_lat: Floats | float,
        to_lon: Floats | float,
    ) -> Floats:
        """Travel times elementwise (numpy broadcasting), for matrices and estimates."""
        ...

    def matrix(self, from_lat: Floats, from_lon: Floats, to_lat: Floats, to_lon: Floats) -> Floats:
        """Travel times from every origin (rows) to every destination (columns); OSRM's
        ``table`` service answers the same question for a road network."""
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

    def pairs(
        self,
        from_lat: Floats | float,
        from_lon: Floats | float,
        to_lat: Floats | float,
        to_lon: Floats | float,
    ) -> Floats:
        seconds: Floats = (
            haversine_pairs(from_lat, from_lon, to_lat, to_lon) * self.detour / self.speed_mps
        )
        return seconds

    def matrix(self, from_lat: Floats, from_lon: Floats, to_lat: Floats, to_lon: Floats) -> Floats:
        return self.pairs(from_lat[:, None], from_lon[:, None], to_lat[None, :], to_lon[None, :])

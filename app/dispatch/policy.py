"""Everything a deployment may tune about matching: weights, speeds, limits."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from app.dispatch.model import Priority
from app.dispatch.travel import StraightLine, TravelTime


@dataclass(frozen=True, slots=True)
class Weights:
    """Cost terms in seconds-equivalents: travel time dominates, the rest nudges. Only
    continuity and the senior's preference take off; every other term adds."""

    travel: float = 1.0  # per second of the caregiver's travel to the senior
    delay: float = 0.25  # per second between the earliest wanted start and the start
    continuity: float = (
        600.0  # bonus for a caregiver who has served this senior (x visits, up to 3)
    )
    preferred: float = 900.0  # bonus for a caregiver on the senior's preferred list
    language: float = 300.0  # when the senior asks for languages and none is shared
    workload: float = 600.0  # x (visits that day / daily cap): spreads the work
    rating: float = 120.0  # x (5 - stars) / 4: 0 for five stars, 120 for one, 60 for none yet


DEFAULT_ASAP_WAIT = MappingProxyType(
    {Priority.emergency: 45 * 60.0, Priority.urgent: 90 * 60.0, Priority.normal: 4 * 3600.0}
)

# Seconds-equivalents for leaving an order unplaced (batch and day plans). Any feasible
# placement costs less than UNPLACED[normal] (costs are bounded by the ASAP wait and travel),
# and each step up is more than a whole batch of the level below could cost: an emergency is
# never given up to save distance elsewhere.
UNPLACED = MappingProxyType({Priority.normal: 1e6, Priority.urgent: 1e10, Priority.emergency: 1e14})


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    weights: Weights = field(default_factory=Weights)
    travel: TravelTime = field(default_factory=StraightLine)
    # An ASAP order must start within this long of ``now``.
    asap_max_wait_s: Mapping[Priority, float] = field(default_factory=lambda: DEFAULT_ASAP_WAIT)
    # A position older than this says nothing about where an ASAP caregiver is.
    max_position_age_s: float = 30 * 60.0
    # The local day (daily visit caps, the workload term) starts at midnight in this offset
    # from UTC. The live service sets it per district: its IANA zone's offset at ``now``
    # (``app.services.fleet.district_config``). One fixed offset per decision: where a zone
    # changes its clocks (DST), days on the far side of the change are cut an hour off until
    # ``now`` crosses it too. Certificates are exact: their expiry instants come from the zone.
    utc_offset_s: float = 8 * 3600.0
    candidates: int = 5  # how many ranked candidates a single order asks for
    emergency_offers: int = 3  # an emergency is offered to this many at once

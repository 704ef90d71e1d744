"""Demo data (placeholder until the demo district lands)."""

from app.config import Settings


async def seed_demo(settings: Settings, *, if_empty: bool) -> str:
    return "no demo data yet"

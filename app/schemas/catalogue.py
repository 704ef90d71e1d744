from app.schemas.common import Output


class ServiceOut(Output):
    code: str
    name: str
    description: str
    required_skills: list[str]
    default_duration_min: int
    price_fen: int

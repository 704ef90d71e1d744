"""The published contract: every route under /v1, tags per role, an example on every body."""

from httpx import AsyncClient


async def test_every_request_body_has_an_example(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    missing = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for media in op.get("requestBody", {}).get("content", {}).values():
                name = media["schema"].get("$ref", "").rsplit("/", 1)[-1]
                if "example" not in media and "examples" not in schemas.get(name, {}):
                    missing.append(f"{method.upper()} {path}")
    assert missing == []


async def test_routes_are_versioned_and_tagged(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["description"]
    tags = {t["name"] for t in spec["tags"]}
    assert {"seniors", "caregivers", "providers", "operators"} <= tags
    for path, ops in spec["paths"].items():
        assert path.startswith("/v1/") or path in {"/healthz", "/readyz"}, path
        for op in ops.values():
            assert set(op["tags"]) <= tags, path


async def test_health_and_readiness(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ok"}


def test_readme_documents_every_setting() -> None:
    from pathlib import Path

    from app.config import Settings

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [
        f"DOORSTEP_{name.upper()}"
        for name in Settings.model_fields
        if f"DOORSTEP_{name.upper()}" not in readme
    ]
    assert missing == []

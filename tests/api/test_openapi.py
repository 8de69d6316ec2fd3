"""The OpenAPI document and the answers agree on what each path allows."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/u/some-token", "GET, POST"),
        ("PUT", "/v1/leads", "GET, POST"),
        ("DELETE", "/v1/orgs/me", "GET, PATCH"),
    ],
)
async def test_a_405_names_every_method_of_the_path(
    api: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    answer = await api.request(method, path)

    assert answer.status_code == 405
    assert answer.headers["allow"] == allow
    assert answer.json()["error"]["code"] == "method_not_allowed"


async def test_every_error_an_operation_documents_is_the_envelope(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith(("4", "5")) or path == "/readyz":
                    continue
                schemas = [c["schema"] for c in response.get("content", {}).values()]
                envelope = {"$ref": "#/components/schemas/ErrorBody"}
                if path.startswith("/u/") and status == "404":
                    continue  # the unsubscribe page says so in HTML
                assert schemas == [envelope], (method, path, status)
            assert "422" not in operation["responses"] or "HTTPValidationError" not in str(
                operation["responses"]["422"]
            )

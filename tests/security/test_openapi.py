"""The OpenAPI document tells the truth: every error status with the error body, the
Idempotency-Key pattern, the configured amount limits; authentication comes before headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from tests.charging.api_world import ApiWorld, api_world

pytestmark = pytest.mark.integration

LIMITS = {
    "enable_swagger": True,
    "charge_min_tyiyn": 1_500,
    "charge_max_tyiyn": 750_000,
    "topup_min_tyiyn": 2_000,
    "topup_max_tyiyn": 3_000_000,
}


@pytest.fixture
async def world(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> AsyncIterator[ApiWorld]:
    async with api_world(db_sessions, temporal_env.client, **LIMITS) as built:
        yield built


@pytest.fixture
async def document(world: ApiWorld) -> dict[str, Any]:
    response = await world.http.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][path][method]
    return found


async def test_every_api_operation_documents_its_error_statuses_with_the_error_body(
    document: dict[str, Any],
) -> None:
    for path, methods in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in methods.items():
            for status in ("400", "413", "422", "429", "503"):
                assert status in op["responses"], (method, path, status)
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
            # Everything but the public station data needs a token (the webhook: a signature).
            if not path.startswith(("/api/v1/stations", "/api/v1/locations")):
                assert "401" in op["responses"], (method, path)
    start = operation(document, "post", "/api/v1/charging/start")["responses"]
    assert {"201", "401", "402", "404", "409"} <= set(start)
    card = operation(document, "post", "/api/v1/payment/h2h-create")["responses"]
    assert {"201", "401", "402", "409", "501", "502", "504"} <= set(card)


async def test_the_idempotency_key_header_and_amount_limits_are_documented(
    document: dict[str, Any],
) -> None:
    start = operation(document, "post", "/api/v1/charging/start")
    header = next(p for p in start["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header"
    text = str(header["schema"])
    assert "A-Za-z0-9" in text and "200" in text
    schemas = document["components"]["schemas"]
    charge = schemas["StartCharging"]["properties"]["amount_tyiyn"]
    assert (charge["minimum"], charge["maximum"]) == (1_500, 750_000)
    for name in ("TopUpRequest", "H2HRequest"):
        topup = schemas[name]["properties"]["amount_tyiyn"]
        assert (topup["minimum"], topup["maximum"]) == (2_000, 3_000_000)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/charging/start", "/api/v1/balance/topup-qr", "/api/v1/payment/h2h-create"],
)
async def test_an_unauthenticated_post_with_a_bad_idempotency_key_is_401(
    world: ApiWorld, path: str
) -> None:
    response = await world.http.post(path, json={}, headers={"Idempotency-Key": "bad key\t!"})
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"]


async def test_an_authenticated_post_with_a_bad_idempotency_key_is_still_400(
    world: ApiWorld,
) -> None:
    client = await world.new_client(0)
    headers = {**world.client_headers(client), "Idempotency-Key": "bad key!"}
    response = await world.http.post("/api/v1/balance/topup-qr", json={}, headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (
        400,
        "invalid_idempotency_key",
    )


async def test_the_receipt_documents_its_json_model_and_its_html_page(
    document: dict[str, Any],
) -> None:
    receipt = operation(document, "get", "/api/v1/charging/{session_id}/receipt")["responses"]
    assert {"200", "401", "404", "409"} <= set(receipt)
    content = receipt["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/ChargingReceipt"}
    assert content["text/html"]["schema"] == {"type": "string"}
    fields = document["components"]["schemas"]["ChargingReceipt"]["properties"]
    assert {"cost_tyiyn", "refunded_tyiyn", "ledger_entries", "energy_kwh"} <= set(fields)

"""The one place Temporal clients are built: same data converter and interceptors for all."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from models.settings import Settings
from workers.converter import DATA_CONVERTER
from workflows import search_attributes


async def connect(
    settings: Settings, *, address: str | None = None, runtime: Runtime | None = None
) -> Client:
    """A client for the configured Temporal namespace (pydantic payloads, OTel tracing).

    Args:
        settings: The deployment settings (address and namespace).
        address: Another ``host:port`` than the configured one.
        runtime: The Temporal runtime to use (a worker's serves metrics: see
            :func:`workers.telemetry.metrics_runtime`); the SDK's default one if ``None``.
    """
    return await Client.connect(
        address or settings.effective_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=DATA_CONVERTER,
        # Spans go to the global tracer provider (workers.telemetry), looked up at each span.
        interceptors=[TracingInterceptor()],
        runtime=runtime,
    )


async def register_search_attributes(client: Client) -> list[str]:
    """Add keepwarm's search attributes to the client's namespace; return the ones added.

    Idempotent: attributes already present are left alone, so a production cluster can run
    ``keepwarm migrate`` on every deploy.
    """
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace), timeout=timedelta(seconds=10)
        )
        present = set(existing.custom_attributes) | set(existing.system_attributes)
    except RPCError as error:
        # The time-skipping test server can add search attributes but not list them.
        if error.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        present = set()
    missing = {
        key.name: _indexed_type(key) for key in search_attributes.ALL if key.name not in present
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing),
            timeout=timedelta(seconds=30),
        )
    return sorted(missing)


def _indexed_type(key: SearchAttributeKey[Any]) -> IndexedValueType.ValueType:
    kind: SearchAttributeIndexedValueType = key.indexed_value_type
    return IndexedValueType.ValueType(int(kind))


def dev_server_search_attribute_args() -> list[str]:
    """``--search-attribute Name=Type`` flags for ``temporal server start-dev``."""
    names = {
        SearchAttributeIndexedValueType.KEYWORD: "Keyword",
        SearchAttributeIndexedValueType.INT: "Int",
        SearchAttributeIndexedValueType.BOOL: "Bool",
        SearchAttributeIndexedValueType.TEXT: "Text",
        SearchAttributeIndexedValueType.DOUBLE: "Double",
        SearchAttributeIndexedValueType.DATETIME: "Datetime",
    }
    args: list[str] = []
    for key in search_attributes.ALL:
        args += ["--search-attribute", f"{key.name}={names[key.indexed_value_type]}"]
    return args

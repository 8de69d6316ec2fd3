"""The data converter every keepwarm client and worker uses: pydantic JSON payloads.

Temporal's ``pydantic_data_converter`` caches pydantic ``TypeAdapter`` objects per converter
instance, and the workflow sandbox makes a new converter for every workflow run, so each run
rebuilt the adapters for its inputs and results (about a tenth of the worker's CPU at 20 leads
a second). This one shares a single cache across the process. Payloads are byte-for-byte the
same as ``pydantic_data_converter``'s, so recorded histories still decode.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

#: Adapters for the handful of payload types keepwarm has, shared by every converter instance.
_ADAPTERS: functools._lru_cache_wrapper[TypeAdapter[Any]] = functools.lru_cache(maxsize=512)(
    TypeAdapter
)


class _SharedCacheJSONConverter(PydanticJSONPlainPayloadConverter):
    """Pydantic JSON with the process-wide adapter cache."""

    def __init__(self) -> None:
        super().__init__()
        self._type_adapter = _ADAPTERS


class KeepwarmPayloadConverter(CompositePayloadConverter):
    """Temporal's default encodings, with JSON through pydantic and the shared cache."""

    def __init__(self) -> None:
        json = _SharedCacheJSONConverter()
        super().__init__(
            *(
                json if isinstance(converter, JSONPlainPayloadConverter) else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


DATA_CONVERTER = DataConverter(payload_converter_class=KeepwarmPayloadConverter)

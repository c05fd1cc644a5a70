"""Every request attempt bounded in time, including uploads to a server that stopped
reading.

The SDK's ``connection_timeout`` and ``read_timeout`` become aiohttp's ``sock_connect``
and ``sock_read``; neither applies while aiohttp waits for a server that stopped reading
to take more of a request body, so a Put Blob or Put Block to an endpoint that accepted
the connection and then froze waited for good.

`BoundedTransport` is azure-core's public `AioHttpTransport` (handed to the client as
its ``transport``) with each `send` run under an overall limit: ``connection_timeout +
read_timeout``, plus ``read_timeout`` per MiB of request body (a body that moves slower
than 1 MiB per ``read_timeout`` counts as stalled). An attempt past its limit fails as
the SDK's own `ServiceResponseTimeoutError`, which the retry policy retries within
``retries`` and the storage reports like any other timeout. Downloads are streamed after
`send` returns, and aiohttp's ``sock_read`` bounds each wait for their bytes.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ServiceResponseTimeoutError
from azure.core.pipeline.transport import AioHttpTransport

from moorage.storage.ioloop import attempt_limit, within

__all__ = ["BoundedTransport"]


class BoundedTransport(AioHttpTransport):  # type: ignore[misc]
    """azure-core's aiohttp transport, each `send` bounded by `attempt_limit`."""

    def __init__(self, *, connection_timeout: float, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(connection_timeout=connection_timeout, read_timeout=read_timeout, **kwargs)
        self._bound = (connection_timeout, read_timeout)

    async def send(self, request: Any, **kwargs: Any) -> Any:
        connect, read = self._bound
        try:
            nbytes = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            nbytes = 0

        def expired(limit: float) -> Exception:  # the SDK's retry policy retries it
            return ServiceResponseTimeoutError(f"no complete answer within {limit:.3g} s")

        return await within(
            attempt_limit(connect, read, nbytes), super().send(request, **kwargs), expired
        )

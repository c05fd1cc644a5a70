"""Every request attempt bounded in time, including the ones aiohttp would wait on forever.

botocore's ``connect_timeout`` and ``read_timeout`` become aiohttp's ``sock_connect`` and
``sock_read``. Neither applies while aiohttp waits for the ``100 Continue`` that botocore
asks for before sending a PutObject or UploadPart body (``Expect: 100-continue``), nor
while it waits for a server that stopped reading to take more of a body: a write to an
endpoint that accepts connections and then stops answering hung for good.

`BoundedSession` is aiobotocore's HTTP session (handed to it through ``AioConfig``'s
public ``http_session_cls`` option) with each attempt run under an overall limit:
``connect_timeout + read_timeout``, plus ``read_timeout`` per MiB of request body (a body
that moves slower than 1 MiB per ``read_timeout`` counts as stalled). An attempt past its
limit is cancelled and fails as botocore's own `ReadTimeoutError`, so botocore retries it
like any other timeout, within ``retries``, and the storage reports it as one.

The cancellation also takes care of aiohttp's body-writing task: an attempt that is
cancelled or fails while that task is still running leaves it with nothing to report.
"""

from __future__ import annotations

from typing import Any

from aiobotocore.httpsession import AIOHTTPSession  # type: ignore[import-untyped]
from botocore.exceptions import ReadTimeoutError  # type: ignore[import-untyped]

from moorage.storage.ioloop import attempt_limit, within

__all__ = ["BoundedSession"]


def _body_size(headers: Any) -> int:
    for name in ("X-Amz-Decoded-Content-Length", "Content-Length"):
        value = headers.get(name)
        if value:
            try:
                return int(value)
            except ValueError:
                continue
    return 0


class BoundedSession(AIOHTTPSession):  # type: ignore[misc]
    """aiobotocore's aiohttp session, each `send` bounded by `attempt_limit`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # aiobotocore passes botocore's (connect_timeout, read_timeout) as ``timeout``.
        timeout = kwargs.get("timeout")
        if isinstance(timeout, (tuple, list)):
            self._bound = (float(timeout[0]), float(timeout[1]))
        elif isinstance(timeout, (int, float)):
            self._bound = (float(timeout), float(timeout))
        else:
            self._bound = (60.0, 60.0)  # botocore's defaults

    async def send(self, request: Any) -> Any:
        connect, read = self._bound

        def expired(limit: float) -> Exception:
            error: Exception = ReadTimeoutError(  # botocore retries it like any read timeout
                endpoint_url=request.url, error=f"no complete answer within {limit:.3g} s"
            )
            return error

        limit = attempt_limit(connect, read, _body_size(request.headers))
        return await within(limit, super().send(request), expired)

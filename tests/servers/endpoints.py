"""Stand-in endpoints on 127.0.0.1 for the error tests: an address nobody listens on,
and servers that answer with a chosen status, hang up, or never answer.

The servers are `CountingProxy` instances with nothing behind them, so they record each
request as an `Exchange` exactly as the proxies do; use them as context managers.
"""

from __future__ import annotations

from servers import free_port
from servers.proxy import CountingProxy, Reply

__all__ = ["answering", "hanging_up", "silent", "unused_endpoint"]


def unused_endpoint() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


def answering(reply: Reply) -> CountingProxy:
    """A server that answers every request with ``reply``."""
    endpoint = CountingProxy(None)
    endpoint.reply(reply)
    return endpoint


def hanging_up() -> CountingProxy:
    """A server that reads each request, then closes the connection without an answer."""
    endpoint = CountingProxy(None)
    endpoint.drop()
    return endpoint


def silent() -> CountingProxy:
    """A server that reads each request and never answers it."""
    endpoint = CountingProxy(None)
    endpoint.stall()
    return endpoint

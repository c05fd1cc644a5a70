"""An HTTP-aware counting proxy on 127.0.0.1, to put in front of a test server.

`CountingProxy` starts on a free port and forwards every request to a server on
127.0.0.1, recording it as an `Exchange`: method, path (with its query), request headers
and body, the response's status and how many body bytes went back. It also keeps the
most requests that were in flight at once. A request is in flight from the moment its
head arrives until its response is complete at the proxy, which is just before that
response goes back: a client that waits for each answer is never counted twice.

It speaks HTTP on both sides, so clients may keep connections alive (the Azure SDK,
aiohttp) and servers may close after each response (moto, the GCS emulator): each
request goes upstream on a connection of its own and comes back on the client's.

Rules put a test's exact point into the traffic (``match`` is a text the path contains,
or a test of the `Exchange`; ``""`` matches every request):

- `CountingProxy.hold`: hold requests until ``n`` are in flight at once;
- `CountingProxy.before`: call a function just before a matching request goes on;
- `CountingProxy.reply`: answer with a made-up `Reply` instead of asking the server;
- `CountingProxy.drop`: close the connection unanswered, as a failing network does;
- `CountingProxy.stall`: never answer (until the proxy stops), as a hung server does;
- ``delay``: seconds every request waits first, a network's round trip.

With no server behind it (``upstream_port=None``) it is a stand-in endpoint that answers
from its rules alone (see `servers.endpoints`).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from servers.loopback_http import Exchange, LoopbackHTTPServer, Reply, has_body

__all__ = ["CountingProxy", "Exchange", "Match", "Reply"]

#: Which requests a rule is for: a text their path (with its query) contains, or a test.
Match = str | Callable[[Exchange], bool]

#: Headers about one connection rather than the message: never passed on.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding"}
    | {"upgrade", "expect"}  # the proxy answers "Expect: 100-continue" itself
)
#: How long a held request waits for company before it goes on alone (a sequential
#: client never brings it; the gate stays for the next request).
_HOLD_LIMIT = 10.0
#: How long the proxy waits for the server's answer to one request.
_UPSTREAM_TIMEOUT = 120.0


def _matches(exchange: Exchange, match: Match) -> bool:
    return match in exchange.path if isinstance(match, str) else match(exchange)


@dataclass(eq=False)
class _Hook:
    match: Match
    action: Callable[[Exchange], object]
    once: bool


@dataclass(eq=False)
class _Fault:
    match: Match
    outcome: Reply | Literal["drop", "stall"]
    after: int  # matching requests still let through before the fault applies


class CountingProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream_port`` that counts requests.

    Stop it with `stop` (or use it as a context manager).
    """

    def __init__(self, upstream_port: int | None) -> None:
        self.upstream_port = upstream_port
        #: Seconds each request waits before it goes on: a network's round trip.
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._gate: tuple[int, Match] | None = None
        self._hooks: list[_Hook] = []
        self._faults: list[_Fault] = []
        self._stopping = False
        self._server = LoopbackHTTPServer(self._answer)
        self.port = self._server.port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the form of STORAGE_EMULATOR_HOST."""
        return f"127.0.0.1:{self.port}"

    # -- what the tests read ----------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        """The requests since the last `reset`, in the order their heads arrived."""
        with self._lock:
            return list(self._exchanges)

    def received(self) -> int:
        """Response body bytes that went back to clients since the last `reset`."""
        return sum(e.received for e in self.exchanges)

    def summary(self) -> list[str]:
        """A line per exchange, for assertion messages."""
        return [e.line() for e in self.exchanges]

    def reset(self) -> None:
        """Forget the exchanges; the most in flight starts again from those in flight now.
        Rules stay (see `clear_rules`)."""
        with self._lock:
            self._exchanges = []
            self.max_in_flight = self.in_flight

    # -- rules ------------------------------------------------------------------------

    def hold(self, n: int, match: Match = "") -> None:
        """Hold matching requests until ``n`` requests are in flight at once, then let
        them all go. Overlap made certain: concurrent clients get there, a client that
        sends one request at a time never does (each goes on alone after 10 s)."""
        with self._lock:
            self._gate = (n, match)

    def before(
        self, match: Match, action: Callable[[Exchange], object], *, once: bool = True
    ) -> None:
        """Call ``action(exchange)`` just before a matching request goes on to the server:
        the next one only, or each one (``once=False``). It runs in the proxy's thread
        for that request, which waits for it."""
        with self._lock:
            self._hooks.append(_Hook(match, action, once))

    def reply(self, reply: Reply, match: Match = "", *, after: int = 0) -> None:
        """Answer matching requests with ``reply`` instead of asking the server, once
        ``after`` of them have gone through."""
        with self._lock:
            self._faults.append(_Fault(match, reply, after))

    def drop(self, match: Match = "", *, after: int = 0) -> None:
        """Read matching requests, then close their connections without an answer, once
        ``after`` of them have gone through."""
        with self._lock:
            self._faults.append(_Fault(match, "drop", after))

    def stall(self, match: Match = "") -> None:
        """Read matching requests and never answer them; `stop` closes their connections."""
        with self._lock:
            self._faults.append(_Fault(match, "stall", 0))

    def clear_rules(self) -> None:
        """Remove the hold, hooks, replies, drops and stalls: forward everything."""
        with self._lock:
            self._gate = None
            self._hooks.clear()
            self._faults.clear()
            self._changed.notify_all()

    # -- a request's way through (in the thread of its connection) ----------------------

    def _answer(self, exchange: Exchange, headers: list[tuple[str, str]]) -> Reply | None:
        """The reply to send for ``exchange``, or None to close the connection unanswered."""
        with self._lock:
            self._exchanges.append(exchange)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._changed.notify_all()
        try:
            self._wait_at_gate(exchange)
            for action in self._due_hooks(exchange):
                action(exchange)
            if self.delay:
                time.sleep(self.delay)
            outcome = self._fault_for(exchange)
            if outcome == "stall":
                with self._lock:
                    self._changed.wait_for(lambda: self._stopping)
            if outcome in ("drop", "stall") or self._stopping:
                exchange.dropped = True
                return None
            reply = outcome if isinstance(outcome, Reply) else self._forward(exchange, headers)
            exchange.status = reply.status
            exchange.received = len(reply.body) if has_body(exchange.method, reply.status) else 0
            return reply
        finally:
            with self._lock:
                self.in_flight -= 1

    def _wait_at_gate(self, exchange: Exchange) -> None:
        gate = self._gate
        if gate is None or not _matches(exchange, gate[1]):
            return
        with self._lock:
            opened = self._changed.wait_for(
                lambda: self.in_flight >= gate[0] or self._gate is not gate or self._stopping,
                timeout=_HOLD_LIMIT,
            )
            if opened and self._gate is gate:
                self._gate = None
                self._changed.notify_all()

    def _due_hooks(self, exchange: Exchange) -> list[Callable[[Exchange], object]]:
        with self._lock:
            hooks = list(self._hooks)
        matching = [hook for hook in hooks if _matches(exchange, hook.match)]
        with self._lock:
            due = [hook for hook in matching if hook in self._hooks]
            for hook in due:
                if hook.once:
                    self._hooks.remove(hook)
        return [hook.action for hook in due]

    def _fault_for(self, exchange: Exchange) -> Reply | Literal["drop", "stall"] | None:
        with self._lock:
            faults = list(self._faults)
        matching = [fault for fault in faults if _matches(exchange, fault.match)]
        with self._lock:
            for fault in matching:
                if fault not in self._faults:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                return fault.outcome
        return None

    def _forward(self, exchange: Exchange, headers: list[tuple[str, str]]) -> Reply:
        if self.upstream_port is None:
            return Reply(502, b"this stand-in has no answer for this request")
        upstream = http.client.HTTPConnection(
            "127.0.0.1", self.upstream_port, timeout=_UPSTREAM_TIMEOUT
        )
        try:
            upstream.putrequest(
                exchange.method, exchange.path, skip_host=True, skip_accept_encoding=True
            )
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    upstream.putheader(name, value)
            framed = {"content-length", "transfer-encoding"} & exchange.headers.keys()
            if exchange.body or framed:
                upstream.putheader("Content-Length", str(len(exchange.body)))
            upstream.endheaders(exchange.body or None)
            response = upstream.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            return Reply(502, f"the server behind the proxy failed: {error!r}".encode())
        finally:
            upstream.close()
        kept = tuple((n, v) for n, v in response.getheaders() if n.lower() not in _HOP_BY_HOP)
        return Reply(response.status, body, kept, response.reason)

    # -- stopping ---------------------------------------------------------------------

    def stop(self) -> None:
        """Stop listening, close every connection and wait for their threads."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._changed.notify_all()  # held and stalled requests end
        self._server.stop()

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

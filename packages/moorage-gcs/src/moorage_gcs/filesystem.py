"""The gcsfs filesystem a `GCSStorage` talks through.

``gcsfs.GCSFileSystem`` is not the class to use: unless the environment variable
``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT`` is set to false before gcsfs is imported, that
name is bound to ``gcsfs.extended_gcsfs.ExtendedGcsFileSystem``, which asks the Storage
Control API over gRPC for each bucket's layout (zonal or hierarchical) before uploads
and other operations. Against an emulator, or wherever that gRPC endpoint is not
reachable, the call is retried for about 60 s, then falls back to plain JSON requests;
the answer "unknown" is not cached, so the wait comes back. moorage only stores whole
objects by name, which the JSON API does everywhere, so it builds
``gcsfs.core.GCSFileSystem``, the plain class: no gRPC channel is ever opened.

gcsfs fixes its retry count (6 attempts) when the class is defined; `PlainGCSFileSystem`
runs gcsfs's own retry policy (what is retried, the backoff, no retry of 404s) with the
number of retries set per storage instead, and bounds each attempt of an upload as a
whole (see `attempt_limit`).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from gcsfs.core import GCSFileSystem
from gcsfs.retry import retry_request
from google.auth.exceptions import GoogleAuthError

from moorage.errors import ConfigurationError
from moorage.storage.ioloop import attempt_limit, within
from moorage_gcs.options import GCSOptions

__all__ = ["PlainGCSFileSystem", "build_filesystem"]

# gcsfs internals, kept on purpose: gcsfs offers no public way to set the number of
# retries (its decorator fixes 6 attempts at import time) or to bound one attempt as a
# whole, and every request of a storage must have both (timeouts and a retry limit on
# every path, uploads included). Undoing the decorator (``__wrapped__``, from the
# ``decorator`` package) gives one attempt and gcsfs's own retry loop as functions.
# Checked against gcsfs 2026.7.0 to 2026.10.1; moorage-gcs pins gcsfs below 2026.11 so a
# release that changes them is taken only after the tests in tests/backends/gcs pass.
# One request, no retry: the function gcsfs wraps in its retry decorator.
_one_attempt = GCSFileSystem._request.__wrapped__
# gcsfs's retry loop, taking the number of attempts as an argument.
_with_retries = retry_request.__wrapped__


async def _bounded_attempt(
    fs: PlainGCSFileSystem, method: str, path: str, *args: Any, **kwargs: Any
) -> Any:
    """One request; one that sends a body runs under `attempt_limit`.

    aiohttp's ``sock_read`` bounds every wait for an answer, but not the sending of a
    body to a server that stopped reading: an upload to a frozen endpoint waited for
    good. A request without a body (reads, listings, deletes) is left to ``sock_read``
    alone, so a long but steady download is never cut off. Past its limit the attempt
    fails as aiohttp's `ServerTimeoutError`, which gcsfs retries like any timeout.
    """
    data = kwargs.get("data")
    nbytes = memoryview(data).nbytes if isinstance(data, (bytes, bytearray, memoryview)) else 0
    if not nbytes:
        return await _one_attempt(fs, method, path, *args, **kwargs)

    def expired(limit: float) -> Exception:
        # aiohttp's own timeout error: gcsfs retries it (a bare TimeoutError it does not).
        return aiohttp.ServerTimeoutError(f"no complete answer within {limit:.3g} s")

    work = _one_attempt(fs, method, path, *args, **kwargs)
    return await within(attempt_limit(*fs.bound, nbytes), work, expired)


class PlainGCSFileSystem(GCSFileSystem):  # type: ignore[misc]
    """The JSON-API-only gcsfs filesystem, with a per-instance number of retries, and
    each attempt of an upload request bounded in time (`attempt_limit`)."""

    def __init__(
        self, *args: Any, retries: int, bound: tuple[float, float] = (10.0, 60.0), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.attempts = retries + 1
        self.bound = bound  # (connect_timeout, timeout)

    async def _request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        return await _with_retries(
            _bounded_attempt, self.attempts, self, method, path, *args, **kwargs
        )

    async def _request_once(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        """One request without retries, for best-effort clean-up calls."""
        return await _bounded_attempt(self, method, path, *args, **kwargs)


def build_filesystem(options: GCSOptions, *, asynchronous: bool, loop: Any) -> PlainGCSFileSystem:
    """A new filesystem for these options: not cached, no listings cache.

    Options left unset are not passed on, so gcsfs's own defaults and the variables it
    reads (STORAGE_EMULATOR_HOST, GCSFS_DEFAULT_PROJECT, GOOGLE_APPLICATION_CREDENTIALS
    through Application Default Credentials) keep working.
    """
    kwargs: dict[str, Any] = {
        "token": options.credentials(),
        "access": options.access,
        "requester_pays": options.requester_pays,
        # Per request: the time to connect, then the longest wait for the next bytes of
        # the answer; a slow but steady large transfer is not cut off.
        "requests_timeout": aiohttp.ClientTimeout(
            total=None, sock_connect=options.connect_timeout, sock_read=options.timeout
        ),
        "session_kwargs": dict(options.session_kwargs),
        "retries": options.retries,
        "bound": (options.connect_timeout, options.timeout),
        "asynchronous": asynchronous,
        "loop": loop,
        "skip_instance_cache": True,
        "use_listings_cache": False,
    }
    if options.project is not None:
        kwargs["project"] = options.project
    if options.endpoint_url is not None:
        kwargs["endpoint_url"] = options.endpoint_url
    try:
        return PlainGCSFileSystem(**kwargs)
    except (OSError, ValueError, KeyError, GoogleAuthError) as exc:
        raise ConfigurationError(_credentials_problem(options, exc)) from exc


_METHOD_HINTS = {
    "google_default": "check GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth "
    "application-default login`, and that option project (if given) is their project",
    "cloud": "it only works on a Google Cloud machine, against the real endpoint",
    "cache": "no gcsfs token is cached on this machine; use another token",
}


def _credentials_problem(options: GCSOptions, exc: BaseException) -> str:
    """Why gcsfs refused the credentials, without quoting them."""
    token, kind = options.token, type(exc).__name__
    if token is None:
        return (
            f"no usable Google credentials were found ({kind}); set the option token or "
            "GOOGLE_APPLICATION_CREDENTIALS"
        )
    if isinstance(token, str) and token in _METHOD_HINTS:
        return f"token={token!r} gave no usable credentials ({kind}); {_METHOD_HINTS[token]}"
    if isinstance(token, str):
        what = "is not JSON" if isinstance(exc, json.JSONDecodeError) else "is not usable"
        return (
            f"the credentials file given as option 'token' {what} ({kind}); give a "
            "service-account or authorized-user JSON key file, as downloaded from the "
            "Google Cloud console or written by `gcloud auth application-default login`"
        )
    return (
        f"the credentials given as option 'token' were refused ({kind}); give a key file "
        "path, a mapping of service-account info, or a google.auth Credentials object"
    )

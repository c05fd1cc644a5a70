"""Run gcp-storage-emulator in memory, able to take many clients at once.

The emulator's own ``start`` command serves with ``http.server.HTTPServer``: one request
at a time and a listen backlog of 5, so a burst of concurrent clients overflows the
accept queue and stalls on TCP SYN retries. Here the same request handler and in-memory
storage are served by a threading server with a deep accept queue:

- every connection gets its own thread, which reads the request body off the socket
  before taking the lock, so uploads stream in side by side;
- the emulator's handlers and storage are not thread-safe (plain dicts, read-modify-write
  of resumable uploads), so routing and the answer run under one lock;
- in memory the storage would re-serialize the metadata of every object on every write
  (its persistence file); that is skipped, so a long test session stays fast;
- uploads honour ``ifGenerationMatch``, which the emulator accepts and ignores (see
  `failed_precondition`): a precondition that does not hold is answered 412, as GCS
  documents, and nothing is stored.

Run as ``python tests/servers/gcs_emulator.py --port N`` (host 127.0.0.1). Importing this
module starts nothing and does not need the emulator installed (the test harness imports
every module of this folder).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import threading
from email.parser import BytesParser
from functools import partial
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class ConcurrentServer(ThreadingHTTPServer):
    request_queue_size = 1024  # the listen backlog; http.server's default is 5
    daemon_threads = True


# -- upload preconditions ---------------------------------------------------------------
#
# gcp-storage-emulator (checked with 2026.7.19) accepts ``ifGenerationMatch`` on uploads
# and ignores it: a media, multipart or resumable upload replaces the object whatever
# the parameter says. GCS documents the parameter of objects.insert as "Makes the
# operation conditional on whether the object's current generation matches the given
# value. Setting to 0 makes the operation succeed only if there are no live versions of
# the object." (https://cloud.google.com/storage/docs/json_api/v1/objects/insert), and a
# request whose precondition does not hold fails with HTTP 412 Precondition Failed
# (https://cloud.google.com/storage/docs/request-preconditions). A resumable upload is
# one objects.insert whose parameters are given when the session is opened
# (https://cloud.google.com/storage/docs/performing-resumable-uploads); the object is
# created when the last chunk arrives, and that is where the condition is decided here
# (the session URI the emulator hands out carries the opening request's query, so each
# chunk request brings the parameter back). Only ``ifGenerationMatch`` is emulated.

UPLOAD_PATH = re.compile(r"/upload/storage/v1/b/(?P<bucket>[-.\w]+)/o")

#: The body of GCS's 412 answer.
PRECONDITION_FAILED = {
    "error": {
        "code": 412,
        "message": "At least one of the pre-conditions you specified did not hold.",
        "errors": [
            {
                "message": "At least one of the pre-conditions you specified did not hold.",
                "domain": "global",
                "reason": "conditionNotMet",
                "locationType": "header",
                "location": "If-Match",
            }
        ],
    }
}


def failed_precondition(storage: Any, method: str, target: str, headers: Any, body: bytes) -> bool:
    """Whether this request would create an object against its ``ifGenerationMatch``.

    ``0`` holds where the bucket has no live object of that name; a generation holds
    where the live object has that generation. Requests that create nothing (opening a
    resumable session, a chunk before the last) and requests the emulator answers with
    an error anyway (no such bucket or session) are left to the emulator.
    """
    url = urlsplit(target)
    match = UPLOAD_PATH.fullmatch(url.path)
    query = parse_qs(url.query)
    wanted = query.get("ifGenerationMatch", [None])[0]
    if method not in ("POST", "PUT") or match is None or wanted is None:
        return False
    upload_id = query.get("upload_id", [None])[0]
    if upload_id is not None:
        if not _completes(storage, upload_id, headers.get("Content-Range"), len(body)):
            return False
        try:
            session = storage.get_resumable_file_obj(upload_id)
        except Exception:
            return False
        bucket, name = session["bucket"], session["name"]
    elif query.get("uploadType", [None])[0] in ("media", "multipart"):
        bucket = match["bucket"]
        name = query.get("name", [None])[0] or _multipart_name(headers, body)
    else:
        return False  # opening a resumable session stores nothing yet
    if bucket not in storage.buckets:
        return False
    live = storage.objects.get(bucket, {}).get(name)
    current = str(live["generation"]) if live else "0"
    return current != wanted


def _completes(storage: Any, upload_id: str, content_range: str | None, size: int) -> bool:
    """Whether this chunk request completes the resumable upload (the emulator's own
    reading of Content-Range)."""
    from gcp_storage_emulator.handlers.objects import _parse_resumable_content_range

    parsed = _parse_resumable_content_range(content_range or "")
    if parsed is None:
        return True  # no range: the body is the whole object
    total = parsed["total"]
    if parsed["kind"] == "status":
        return total is not None and storage.get_resumable_byte_count(upload_id) >= total
    if total is None:
        return bool(parsed["kind"] == "star_end")  # "START-*/*": the body is the rest
    return bool(parsed["start"] + size >= total)


def _multipart_name(headers: Any, body: bytes) -> str | None:
    """The object name in a multipart upload's metadata part."""
    content_type = headers.get("Content-Type") or ""
    try:
        message = BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        name = json.loads(message.get_payload()[0].get_payload()).get("name")
    except Exception:
        return None
    return name if isinstance(name, str) else None


def make_server(host: str, port: int) -> ConcurrentServer:
    """The emulator's handlers and in-memory storage behind a `ConcurrentServer`."""
    from gcp_storage_emulator.server import RequestHandler, Router
    from gcp_storage_emulator.storage import Storage

    class MemoryStorage(Storage):  # type: ignore[misc]
        """The emulator's storage in memory, without its per-write persistence file."""

        def __init__(self) -> None:
            super().__init__(use_memory_fs=True)

        def _write_config_to_file(self) -> None:
            """Nothing to persist in memory."""

    routing = threading.Lock()

    class ConcurrentHandler(RequestHandler):  # type: ignore[misc]
        """Bodies read in parallel, requests routed one at a time."""

        def _route(self, method: str) -> None:
            body = b""
            length = self.headers.get("Content-Length")
            if length and length.isdigit():
                body = self.rfile.read(int(length))
                self.rfile = io.BytesIO(body)
            with routing:
                if failed_precondition(self.storage, method, self.path, self.headers, body):
                    self._refuse()
                else:
                    Router(self).handle(method)

        def _refuse(self) -> None:
            """GCS's 412 Precondition Failed; nothing is stored."""
            payload = json.dumps(PRECONDITION_FAILED).encode()
            self.send_response(412, "Precondition Failed")
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    handler: Any = partial(ConcurrentHandler, MemoryStorage())
    return ConcurrentServer((host, port), handler)


def main() -> None:
    parser = argparse.ArgumentParser(description="gcp-storage-emulator, in memory, concurrent")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = make_server(args.host, args.port)
    print(f"gcs emulator listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

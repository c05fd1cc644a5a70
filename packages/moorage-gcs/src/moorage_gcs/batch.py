"""Deleting many objects in one request: the JSON API's batch endpoint.

A batch request is one ``POST /batch/storage/v1`` whose ``multipart/mixed`` body holds
up to 100 HTTP requests, here objects.delete calls
(https://cloud.google.com/storage/docs/batch). The answer is a ``multipart/mixed`` body
of as many HTTP responses, each with its own status: 204 deleted, 404 not there (the
object, or its bucket), anything else a refusal of that object. Each part carries a
``Content-ID``, answered as ``response-`` plus the request's; where a server leaves it
out (gcp-storage-emulator does), the answers are taken in the order of the requests.

The request goes through the filesystem's ``_call`` (gcsfs's request method behind its
public ``call``, with the retries and bounds of `moorage_gcs.filesystem`): a batch of
deletes may be sent again whole, deleting is idempotent. gcsfs's own ``_rm_files`` is
not used: it is not part of its documented interface, and it retries failed objects
itself then reports only which paths it could not delete, without why.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from moorage_gcs.filesystem import PlainGCSFileSystem

__all__ = ["BATCH_LIMIT", "delete_objects"]

#: The most calls GCS takes in one batch request.
BATCH_LIMIT = 100

_STATUS = re.compile(rb"HTTP/\d(?:\.\d)?\s+(\d{3})")
_CONTENT_ID = re.compile(rb"Content-ID:\s*<response-item-(\d+)>", re.IGNORECASE)
_MESSAGE = re.compile(rb'"message"\s*:\s*"((?:[^"\\]|\\.)*)"')
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def _batch_url(fs: PlainGCSFileSystem) -> str:
    """The batch endpoint beside the JSON API's base URL (gcsfs's public ``base``)."""
    return f"{str(fs.base).removesuffix('storage/v1/')}batch/storage/v1"


def _body(bucket: str, names: list[str], boundary: str) -> bytes:
    parts = [
        f"--{boundary}\r\nContent-Type: application/http\r\n"
        f"Content-ID: <item-{index}>\r\n\r\n"
        f"DELETE /storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')} HTTP/1.1\r\n"
        "Content-Length: 0\r\n\r\n"
        for index, name in enumerate(names)
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


async def delete_objects(
    fs: PlainGCSFileSystem, bucket: str, names: list[str]
) -> list[tuple[int, str]]:
    """Delete the objects ``names`` (at most `BATCH_LIMIT`) of ``bucket`` in one batch
    request; ``(status, message)`` of each, in the order of ``names``. A failure of the
    request as a whole raises as gcsfs raises it; an answer that does not account for
    every object raises `ValueError`."""
    boundary = f"moorage-{secrets.token_hex(16)}"
    headers, content = await fs._call(
        "POST",
        _batch_url(fs),
        headers={"Content-Type": f'multipart/mixed; boundary="{boundary}"'},
        data=_body(bucket, names, boundary),
    )
    found = _BOUNDARY.search(str(headers.get("Content-Type", "")))
    if found is None:
        raise ValueError("the batch answer is not a multipart body (no boundary)")
    delimiter = b"--" + found.group(1).encode()
    answers: dict[int, tuple[int, str]] = {}
    for order, part in enumerate(
        p for p in bytes(content).split(delimiter)[1:] if _STATUS.search(p)
    ):
        status = _STATUS.search(part)
        assert status is not None
        named = _CONTENT_ID.search(part)
        message = _MESSAGE.search(part)
        text = message.group(1).decode(errors="replace") if message else ""
        answers[int(named.group(1)) if named else order] = (int(status.group(1)), text)
    if sorted(answers) != list(range(len(names))):
        raise ValueError(
            f"the batch answer accounts for {len(answers)} of {len(names)} deletes; "
            "some objects may still be there"
        )
    return [answers[index] for index in range(len(names))]

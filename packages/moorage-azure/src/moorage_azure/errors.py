"""What the Azure SDK's exceptions mean for a moorage user, and what to do about them.

Every message is passed through `scrub`, so no key, SAS signature or connection string
reaches it, even when the SDK's own text would carry one.
"""

from __future__ import annotations

import asyncio

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from moorage.errors import WriteConflict
from moorage.storage import WriteCondition, write_conflict
from moorage_azure.options import AzureConfig, scrub

__all__ = ["BatchRefused", "ConditionFailed", "conflict", "describe", "error_code", "is_conflict"]

_CREDENTIALS_HINT = (
    "check the account key, SAS token, connection string or credential given as options "
    "(or in AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_KEY, "
    "AZURE_STORAGE_SAS_TOKEN), and that it allows this operation on the container"
)


def error_code(exc: BaseException) -> str:
    """The service's error code (``ContainerNotFound``...), or ``""``."""
    code = getattr(exc, "error_code", None)
    value = getattr(code, "value", code)  # a StorageErrorCode, or a plain str
    return str(value) if value else ""


class BatchRefused(Exception):
    """Every delete of a Blob Batch was refused for one reason that is not the blob's
    (the container is missing, the credentials may not delete): reported as that one
    request would be, through `describe`, which reads the same ``error_code`` and
    ``status_code`` as on the SDK's errors."""

    def __init__(self, status_code: int, error_code: str, reason: str) -> None:
        super().__init__(f"{status_code} {error_code}: {reason}")
        self.status_code = status_code
        self.error_code = error_code


class ConditionFailed(Exception):
    """A conditional block upload found its condition false without the service saying
    so: another writer's commit discarded its blocks (InvalidBlockList) and the blob
    now there fails the condition. Raised by `moorage_azure.upload`, mapped by
    `conflict`."""


#: The service's answers to a write whose condition failed: 409 BlobAlreadyExists for
#: ``If-None-Match: *`` on a blob that exists, 412 ConditionNotMet for ``If-Match`` on
#: another version (or, on Azurite and Azure alike, on a missing blob). The SDK's retry
#: policy retries neither (it retries 408 and 5xx only), and the block upload retries
#: only InvalidBlockList, so a conflict is answered after one request.
_CONFLICT_CODES = frozenset({"BlobAlreadyExists", "ConditionNotMet"})


def is_conflict(exc: BaseException, condition: WriteCondition) -> bool:
    """Whether ``exc``, raised by a write with this condition, is the service refusing
    the condition (nothing was written). This is where those refusals are recognised."""
    if not condition:
        return False
    if isinstance(exc, ConditionFailed):
        return True
    if not isinstance(exc, HttpResponseError):
        return False
    code = error_code(exc)
    if code in _CONFLICT_CODES and exc.status_code in (409, 412):
        return True
    # Should a service answer If-Match on a deleted blob with 404 rather than 412: the
    # version read is gone all the same. (ContainerNotFound is not this.)
    return condition.if_version is not None and code == "BlobNotFound"


def conflict(
    exc: BaseException, *, key: str, url: str, condition: WriteCondition
) -> WriteConflict | None:
    """The `WriteConflict` that ``exc``, raised by a write with these conditions, means;
    None when it means something else (or the write had no condition). The message comes
    from `moorage.storage.write_conflict`, the same on every backend."""
    if not is_conflict(exc, condition):
        return None
    return write_conflict(key, url, condition.if_version)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def describe(
    exc: BaseException,
    *,
    action: str,
    where: str,
    container: str,
    account: str,
    endpoint: str,
    config: AzureConfig,
) -> str:
    """The message for ``exc`` raised while trying to ``action`` ``where``."""
    code = error_code(exc)
    status = getattr(exc, "status_code", None)
    head = f"cannot {action} {where}"
    retried = f"after {config.retries} retr{'y' if config.retries == 1 else 'ies'}"
    retried = retried if config.retries else "without retrying"
    if code == "ContainerNotFound":
        message = (
            f"{head}: the container {container!r} does not exist in the storage account "
            f"{account!r}; create it (az storage container create --name {container} "
            f"--account-name {account}) or fix the URL"
        )
    elif code in ("InvalidResourceName", "OutOfRangeInput") and status == 400:
        message = (
            f"{head}: the service refused the name ({code}); a container name has 3 to 63 "
            "lowercase letters, digits and single hyphens"
        )
    elif status in (401, 403) or (isinstance(exc, ClientAuthenticationError) and status is None):
        reason = code or _first_line(exc)
        message = f"{head}: access denied ({reason}); {_CREDENTIALS_HINT}"
    elif isinstance(exc, ServiceRequestError):
        message = (
            f"{head}: cannot reach {endpoint} {retried} ({_first_line(exc)}); check the "
            "account name, account_host or the BlobEndpoint of the connection string, and "
            "the network"
        )
    elif isinstance(exc, (ServiceResponseError, asyncio.TimeoutError, TimeoutError)):
        message = (
            f"{head}: no complete answer from {endpoint} {retried} ({_first_line(exc)}); "
            f"the connection dropped or timed out (read_timeout={config.read_timeout:g} s); "
            "raise read_timeout or retries if the network is slow"
        )
    elif code == "InvalidBlockList":
        message = (
            f"{head}: other writers kept replacing the blob while its blocks were being "
            "uploaded; write again, or take a lock around writers of this key"
        )
    elif isinstance(exc, HttpResponseError):
        message = f"{head}: the service answered {status} {code or _first_line(exc)}"
    else:
        message = f"{head}: {type(exc).__name__}: {_first_line(exc)}"
    return scrub(message, config.secrets())

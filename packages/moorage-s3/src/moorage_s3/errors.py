"""What S3's and botocore's failures mean, said as what to fix.

`explain` turns an exception (s3fs wraps S3's ``ClientError`` in ``OSError`` subclasses,
keeping it as the cause) into a message for `moorage.StorageError`, or None when the
generic message of `moorage.storage.objectstore.ObjectStorage` fits. Messages are built from
fixed text; the few pieces that come from outside (a server's message, an endpoint, a
profile name) pass through `S3Options.scrub`, so no key, secret or token reaches them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from botocore import exceptions as boto  # type: ignore[import-untyped]

from moorage_s3.options import S3Options

__all__ = ["error_code", "explain"]

_CREDENTIALS = (
    boto.NoCredentialsError,
    boto.PartialCredentialsError,
    boto.CredentialRetrievalError,
    boto.NoAuthTokenError,
    boto.TokenRetrievalError,
)
_CHECK_KEY = "check the option key, AWS_ACCESS_KEY_ID or the profile's aws_access_key_id"
_CHECK_SECRET = "check the option secret, AWS_SECRET_ACCESS_KEY or the profile's credentials"
_REFRESH = "refresh the credentials (option token or AWS_SESSION_TOKEN)"
_BY_CODE: dict[str, str] = {
    **dict.fromkeys(
        ("InvalidAccessKeyId", "InvalidClientTokenId", "NotSignedUp"),
        "the access key id is not known ({code}); " + _CHECK_KEY,
    ),
    "SignatureDoesNotMatch": (
        "the secret key does not match the access key id ({code}); " + _CHECK_SECRET
    ),
    **dict.fromkeys(
        ("ExpiredToken", "ExpiredTokenException", "InvalidToken", "TokenRefreshRequired"),
        "the session token is expired or invalid ({code}); " + _REFRESH,
    ),
    "RequestTimeTooSkewed": "this machine's clock is too far off ({code}); synchronise it",
    **dict.fromkeys(
        ("AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidPayer", "403"),
        "access denied ({code}); the credentials were refused or lack the permission for "
        "this (s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket); check the "
        "credentials and the bucket's policy",
    ),
    **dict.fromkeys(
        ("PermanentRedirect", "AuthorizationHeaderMalformed", "301"),
        "the bucket is in another region than the client's ({code}); set the option "
        "region (or AWS_DEFAULT_REGION) to the bucket's region",
    ),
    **dict.fromkeys(
        ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "500", "503"),
        "the service is busy or failing ({code}) and kept answering so for every attempt "
        "(retries={retries}); try again later or allow more attempts with retries",
    ),
    "EntityTooSmall": "the server refused a part as too small ({code}); raise part_size",
}


def error_code(exc: BaseException) -> tuple[str, str] | None:
    """``(code, message)`` of the S3 error behind ``exc``, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, boto.ClientError):
            error = current.response.get("Error", {})
            return str(error.get("Code", "")), str(error.get("Message", ""))
        current = current.__cause__ or current.__context__
    return None


def _endpoint(exc: BaseException, options: S3Options) -> str:
    """Scheme, host and port of the endpoint a request went to (no path, no user info)."""
    url = getattr(exc, "kwargs", {}).get("endpoint_url") or options.endpoint_url
    if not url:
        return "the AWS S3 endpoint"
    parts = urlsplit(str(url))
    port = f":{parts.port}" if parts.port else ""
    return options.scrub(f"{parts.scheme}://{parts.hostname or ''}{port}")


def explain(exc: BaseException, *, head: str, bucket: str, options: S3Options) -> str | None:
    """The message for ``exc``, starting with ``head`` ("cannot read 'k' in s3://b/p")."""
    retries = options.retries or "botocore default"
    kind = type(exc).__name__
    if isinstance(exc, _CREDENTIALS):
        return (
            f"{head}: no usable AWS credentials ({kind}); give the options key and secret, "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pick a profile (option "
            "profile or AWS_PROFILE), or set anon=true for a public bucket"
        )
    if isinstance(exc, boto.ProfileNotFound):
        profile = options.scrub(str(getattr(exc, "kwargs", {}).get("profile")))
        return (
            f"{head}: the AWS profile {profile!r} is not in the AWS config or credentials "
            "file; fix the option profile or AWS_PROFILE"
        )
    if isinstance(exc, boto.SSLError):
        return (
            f"{head}: TLS with {_endpoint(exc, options)} failed; check the endpoint's "
            "certificate, or point AWS_CA_BUNDLE at the CA that signed it"
        )
    if isinstance(exc, boto.ProxyConnectionError):
        return f"{head}: cannot connect to the HTTP proxy; check HTTPS_PROXY / HTTP_PROXY"
    if isinstance(exc, boto.ConnectionError):  # refused, unresolvable, connect timeout
        return (
            f"{head}: cannot connect to {_endpoint(exc, options)} ({kind}, connect_timeout="
            f"{options.connect_timeout:g} s, retries={retries}); check endpoint_url (or "
            "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL) and that the service is up"
        )
    if isinstance(exc, boto.ReadTimeoutError):
        return (
            f"{head}: {_endpoint(exc, options)} did not answer within read_timeout="
            f"{options.read_timeout:g} s (retries={retries}); raise read_timeout or check "
            "the service"
        )
    if isinstance(exc, boto.HTTPClientError):
        return (
            f"{head}: the connection to {_endpoint(exc, options)} broke ({kind}); try "
            "again, or allow more attempts with retries"
        )
    if isinstance(exc, boto.ParamValidationError):
        return f"{head}: invalid request, not sent: {options.scrub(str(exc))[:300]}"
    found = error_code(exc)
    if found is None:
        text = str(exc)  # not S3's: the generic message, unless it would show a secret
        return None if options.scrub(text) == text else f"{head}: {kind}: {options.scrub(text)}"
    code, text = found
    if code == "NoSuchBucket":
        return (
            f"{head}: the bucket {bucket!r} does not exist; create it (for example "
            f"`aws s3 mb s3://{bucket}`, or S3Storage.create_bucket()) or fix the URL"
        )
    if code in _BY_CODE:
        return f"{head}: " + _BY_CODE[code].format(code=code, retries=retries)
    return f"{head}: S3 error {code}: {options.scrub(text)}"

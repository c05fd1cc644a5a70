"""Azurite (the Azure Storage emulator, from npm) for the tests.

`azure_server` (session scope) starts ``azurite-blob`` on 127.0.0.1 with a free port,
in memory, with telemetry off (without ``--disableTelemetry`` it reaches the internet),
the first time a test asks for it (`start_azurite` starts one for a script). It is
looked up in ``.tools/azurite`` under the repository root, where ``nox -s tests``
installs the version locked in ``tests/servers/azurite/package-lock.json``, then on PATH.

Its value makes containers and storages on them; count requests with a
`servers.proxy.CountingProxy` in front of its ``port``: ``storage(..., via=proxy.endpoint)``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage.storage import Storage

from servers import ROOT, ServerProcess, free_port

__all__ = [
    "ACCOUNT",
    "ACCOUNT_KEY",
    "BACKEND",
    "STORAGE",
    "AzureServer",
    "azure_server",
    "connection_string",
    "start_azurite",
]

BACKEND = "azure"
STORAGE = True

#: Azurite's well-known development account and its published key.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def connection_string(endpoint: str, key: str = ACCOUNT_KEY) -> str:
    """A connection string for the dev account at ``endpoint`` (``http://127.0.0.1:PORT``)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={endpoint}/{ACCOUNT};"
    )


def azurite_command() -> str:
    local = ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    found = shutil.which("azurite-blob")
    if found:
        return found
    pytest.fail(
        f"Azurite is not installed in {ROOT / '.tools' / 'azurite'}: run the tests with "
        "`nox -s tests`, which installs the version locked in tests/servers/azurite/ there "
        "with `npm ci` (needs Node.js and npm)",
        pytrace=False,
    )


class AzureServer:
    """A running Azurite: fresh containers and storages on them."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.port = process.port
        self.endpoint = process.endpoint
        self.connection_string = connection_string(self.endpoint)

    def create_container(self, name: str | None = None) -> str:
        """A new, empty container (a unique name unless given)."""
        from azure.storage.blob import BlobServiceClient

        name = name or f"t-{uuid.uuid4().hex}"
        with BlobServiceClient.from_connection_string(self.connection_string) as client:
            client.create_container(name)
        return name

    def make_storage(self, name: str = "results", **options: Any) -> Storage:
        """A storage on a fresh container, built through the registry from a URL."""
        return self.storage(self.create_container(), name, **options)

    def storage(
        self, container: str, name: str = "results", *, via: str | None = None, **options: Any
    ) -> Storage:
        """A storage on ``container``, built through the registry from a URL.

        ``via``: an endpoint to reach Azurite through (a proxy's), instead of its own.
        """
        from moorage.plugins.resolve import storage_from

        options.setdefault("connection_string", connection_string(via or self.endpoint))
        return storage_from(f"az://{container}/{name}", **options)


def start_azurite(workdir: Path, *, silent: bool = False) -> ServerProcess:
    """Start Azurite's blob service on a free port, in memory, working in ``workdir``;
    ``silent`` leaves out its log of every request."""
    port = free_port()
    command = [azurite_command(), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    command += ["--disableTelemetry", "--skipApiVersionCheck", "--loose", "--inMemoryPersistence"]
    command += ["--silent"] if silent else []
    return ServerProcess("azurite", command, port, workdir, cwd=workdir)


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    process = start_azurite(tmp_path_factory.mktemp("azurite"))
    with process:
        yield AzureServer(process)

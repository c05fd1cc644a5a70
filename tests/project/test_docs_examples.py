"""The documentation runs: every Python block of README.md and docs/ is executed, and every
TOML block parses.

Python blocks (```python and ```py fences) are found with pytest-examples and run one by
one, each as a complete program:

- in a fresh temporary folder that is its working directory, with ``HOME`` and
  ``MOORAGE_LOCAL_STORAGE_PATH`` in a temporary folder too and every ``MOORAGE_*`` and
  cloud SDK variable cleared, so ``./results`` and ``~/.moorage`` land there; an absolute
  path a block names (``file:///var/lib/...``) must not exist after it unless it did before;
- with its prints checked when it shows their output as ``#>`` lines (run_print_check);
- with name lookups and connections refused unless they stay on the loopback interface, so
  a block that would reach the internet fails instead.

A block that uses a backend server runs against the suite's own (``tests/servers``), which
it is given by what its source names (``s3://``, ``gs://``, ``az://``, ``redis://`` or the
backend's package):

- the SDKs' variables point at the server (``AWS_ENDPOINT_URL_S3``,
  ``STORAGE_EMULATOR_HOST``, ``AZURE_STORAGE_CONNECTION_STRING``), as the backend pages'
  emulator recipes do;
- the buckets and containers its URLs name exist, as a reader's would; every bucket or
  container that appeared while it ran is deleted afterwards;
- the endpoints of the pages' by-hand recipes (``localhost:6379``, ``127.0.0.1:5000``,
  ``127.0.0.1:9023``) are replaced by the server's own.

A block that defines pytest test classes is a test file: it runs under pytest in a
subprocess. The plugin package the contract tests of docs/plugins.md import is made of that
page's own example classes.

A block that cannot run says why in its fence, ```python test="skip" reason="...", and is
reported as skipped with that reason.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_examples.run_code
from pytest_examples import CodeExample, EvalExample, find_examples

from moorage.config.settings import MoorageSettings, reset_settings

from servers.azure import AzureServer
from servers.cleanup import clear_environment
from servers.gcs import GCSServer
from servers.redis import RedisServer
from servers.s3 import S3Server

ROOT = Path(__file__).resolve().parents[2]
DOC_SOURCES = [ROOT / "README.md", ROOT / "docs"]


def doc_files() -> list[Path]:
    files: list[Path] = []
    for source in DOC_SOURCES:
        files.extend(sorted(source.rglob("*.md")) if source.is_dir() else [source])
    return files


def label(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


EXAMPLES: list[CodeExample] = sorted(
    find_examples(*DOC_SOURCES), key=lambda example: (str(example.path), example.start_line)
)


def skip_reason(example: CodeExample) -> str | None:
    """Why the block is not run, from its fence: ```python test="skip" reason="..."."""
    settings = example.prefix_settings()
    if settings.get("test") != "skip":
        return None
    reason = settings.get("reason", "").strip()
    if not reason:
        raise ValueError(f'{example}: test="skip" needs reason="why the block cannot run"')
    return reason


# --- backend servers --------------------------------------------------------------------


class Backend:
    """One of the suite's servers as a docs block uses it."""

    #: What in a block's source says it needs this server.
    needed_by: re.Pattern[str]
    #: The bucket (container) names in a block's URLs.
    bucket_urls: re.Pattern[str] | None = None
    #: Endpoints the docs' by-hand recipes start this server on.
    documented_endpoints: tuple[str, ...] = ()

    def __init__(self, server: Any) -> None:
        self.port: int = server.port

    def environment(self) -> dict[str, str]:
        return {}

    def buckets(self) -> set[str]:
        return set()

    def create_bucket(self, name: str) -> None:
        raise NotImplementedError

    def delete_bucket(self, name: str) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        """Remove what a block left behind besides buckets."""

    def named_buckets(self, source: str) -> set[str]:
        return set(self.bucket_urls.findall(source)) if self.bucket_urls else set()

    def localize(self, source: str) -> str:
        """``source`` with the documented endpoints replaced by this server's."""
        for endpoint in self.documented_endpoints:
            source = source.replace(endpoint, f"127.0.0.1:{self.port}")
        return source


class S3Backend(Backend):
    needed_by = re.compile(r"\bs3a?://|\bmoorage_s3\b")
    bucket_urls = re.compile(r"\bs3a?://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])")
    documented_endpoints = ("127.0.0.1:5000",)

    def __init__(self, server: S3Server) -> None:
        super().__init__(server)
        self.server = server
        options = server.options()
        import boto3  # type: ignore[import-untyped]  # moto's own dependency

        self.client = boto3.client(
            "s3",
            endpoint_url=options["endpoint_url"],
            aws_access_key_id=options["key"],
            aws_secret_access_key=options["secret"],
            region_name=options["region"],
        )

    def environment(self) -> dict[str, str]:
        return self.server.env()

    def buckets(self) -> set[str]:
        return {bucket["Name"] for bucket in self.client.list_buckets()["Buckets"]}

    def create_bucket(self, name: str) -> None:
        self.client.create_bucket(Bucket=name)

    def delete_bucket(self, name: str) -> None:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for entry in page.get("Contents", []):
                self.client.delete_object(Bucket=name, Key=entry["Key"])
        self.client.delete_bucket(Bucket=name)


class GCSBackend(Backend):
    needed_by = re.compile(r"\bgc?s://|\bmoorage_gcs\b")
    bucket_urls = re.compile(r"\bgc?s://([a-z0-9][a-z0-9._-]{1,61}[a-z0-9])")
    documented_endpoints = ("127.0.0.1:9023",)

    def __init__(self, server: GCSServer) -> None:
        super().__init__(server)
        self.server = server

    def environment(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.server.host}

    def buckets(self) -> set[str]:
        listing = json.loads(self._call("GET", "/storage/v1/b"))
        return {item["name"] for item in listing.get("items") or []}

    def create_bucket(self, name: str) -> None:
        self.server.create_bucket(name)

    def delete_bucket(self, name: str) -> None:
        for item in self.server.object_names(name):
            self._call("DELETE", f"/storage/v1/b/{name}/o/{urllib.parse.quote(item, safe='')}")
        self._call("DELETE", f"/storage/v1/b/{name}")

    def _call(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(f"{self.server.endpoint}{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            body: bytes = response.read()
            return body


class AzureBackend(Backend):
    needed_by = re.compile(r"\b(?:az|abfss?)://|\bmoorage_azure\b|\bazure\.storage\b")
    bucket_urls = re.compile(r"\b(?:az|abfss?)://([a-z0-9][a-z0-9-]{1,61}[a-z0-9])\b")

    def __init__(self, server: AzureServer) -> None:
        from azure.storage.blob import BlobServiceClient

        super().__init__(server)
        self.server = server
        self.client = BlobServiceClient.from_connection_string(server.connection_string)

    def environment(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.server.connection_string}

    def buckets(self) -> set[str]:
        return {container.name for container in self.client.list_containers()}

    def create_bucket(self, name: str) -> None:
        self.server.create_container(name)

    def delete_bucket(self, name: str) -> None:
        self.client.delete_container(name)

    def cleanup(self) -> None:
        self.client.close()


class RedisBackend(Backend):
    needed_by = re.compile(r"\brediss?://|\bmoorage_redis\b")
    documented_endpoints = ("localhost:6379", "127.0.0.1:6379")
    #: Key prefixes of the locks the docs take.
    lock_prefixes = ("moorage:lock:", "myapp:lock:")

    def __init__(self, server: RedisServer) -> None:
        super().__init__(server)
        self.server = server

    def environment(self) -> dict[str, str]:
        # The TLS example reads its password from here; it only builds a manager.
        return {"REDIS_PASSWORD": "example-password"}

    def cleanup(self) -> None:
        client = self.server.client
        for prefix in self.lock_prefixes:
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)


#: The backends, by the name of their server's fixture (``<name>_server``).
BACKENDS: dict[str, type[Backend]] = {
    "s3": S3Backend,
    "gcs": GCSBackend,
    "azure": AzureBackend,
    "redis": RedisBackend,
}

#: Variables a block finds unset unless its servers set them: moorage's settings, and
#: what the cloud SDKs read (credentials, endpoints, regions, profiles).
CLEARED_VARIABLES = ("MOORAGE_", "AWS_", "AZURE_", "GOOGLE_", "GCSFS_", "STORAGE_EMULATOR_")


def needed_backends(source: str) -> list[str]:
    return [name for name, backend in BACKENDS.items() if backend.needed_by.search(source)]


# --- the environment of a block ---------------------------------------------------------


@pytest.fixture
def docs_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory and HOME for one block; returns the working directory.

    The suite's autouse fixture already gives fresh settings, plugins and memory cache.
    This one also moves HOME (``~/.moorage``, ``~/.aws``...) and clears the SDKs'
    variables, and puts back what running a block changes for the whole process."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    clear_environment(monkeypatch, *CLEARED_VARIABLES)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MOORAGE_LOCAL_STORAGE_PATH", str(home / ".moorage" / "storage"))
    monkeypatch.chdir(work)
    # pytest-examples runs a block as __main__ and leaves it there (multiprocessing would
    # then look for a deleted file).
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    reset_settings()
    return work


@pytest.fixture
def use_backends(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], list[Backend]]]:
    """For a block's source: start (or reuse) the servers it needs, point the environment
    at them and create the buckets it names. Afterwards, delete every bucket that appeared
    meanwhile (the block's own too) and what else it left."""
    used: list[tuple[Backend, set[str]]] = []

    def use(source: str) -> list[Backend]:
        backends = []
        for name in needed_backends(source):
            backend = BACKENDS[name](request.getfixturevalue(f"{name}_server"))
            existing = backend.buckets()
            used.append((backend, existing))
            for variable, value in backend.environment().items():
                monkeypatch.setenv(variable, value)
            for bucket in sorted(backend.named_buckets(source) - existing):
                backend.create_bucket(bucket)
            backends.append(backend)
        reset_settings()
        return backends

    yield use
    for backend, existing in used:
        for bucket in sorted(backend.buckets() - existing):
            backend.delete_bucket(bucket)
        backend.cleanup()


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


def _refused(what: object) -> str:
    return f"a docs example may reach 127.0.0.1 only, not {what!r}"


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse name lookups and connections that would leave the machine."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, _refused(host))
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise ConnectionRefusedError(_refused(address))

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def plain_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a failing block's real traceback, library frames included (a note names the
    lines in the docs). pytest-examples would swap in frames that point into the Markdown
    file; on Python 3.11 it builds their line tables wrongly (from co_lnotab), and pytest
    then fails with an INTERNALERROR while it formats the traceback."""
    monkeypatch.setattr(pytest_examples.run_code, "create_example_traceback", _no_traceback)


def _no_traceback(*args: object) -> None:
    return None


def where_in_docs(exc: BaseException, example: CodeExample) -> str:
    """Where in the docs ``exc`` was raised: the lines of the block's own frames."""
    script = f"{example.module_name}.py"
    lines = []
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).name == script:
            lines.append(example.start_line + tb.tb_lineno)
        tb = tb.tb_next
    path = example.path.relative_to(ROOT)
    at = ", ".join(f"{path}:{line}" for line in lines) or f"{path}:{example.start_line}"
    return f"raised by the code block at {label(example.path, example.start_line)} ({at})"


#: Absolute paths a block names, in file:// URLs or as string literals.
ABSOLUTE_PATHS = re.compile(r"""file://(/[^"'?\s]*)|["'](/[^"'\s]*)["']""")


def named_paths(source: str) -> set[Path]:
    return {Path(url or literal) for url, literal in ABSOLUTE_PATHS.findall(source)}


# --- blocks that are test files ---------------------------------------------------------

#: A block that defines pytest test classes is a test file: it runs under pytest.
TEST_MODULE = re.compile(r"^class Test\w*\(", re.MULTILINE)

#: The plugin package the contract tests of docs/plugins.md import, made of that page's
#: example classes (which the page says pass their contracts), under the names imported.
EXAMPLE_PLUGIN = "moorage_mystore"
EXAMPLE_PLUGIN_CLASSES = {
    "MyStorage": "DictStorage",
    "MyLockManager": "DictLockManager",
    "MySerializer": "MarshalSerializer",
}


def example_plugin_source(page: Path) -> str:
    """``moorage_mystore/__init__.py``: the page's blocks that define the example classes,
    each followed by the name the contract tests import it as."""
    blocks = [example.source for example in EXAMPLES if example.path == page]
    parts = []
    for alias, name in EXAMPLE_PLUGIN_CLASSES.items():
        defining = [block for block in blocks if re.search(rf"^class {name}\(", block, re.M)]
        assert len(defining) == 1, f"{page.name} has {len(defining)} blocks defining {name}"
        parts.append(f"{defining[0]}\n{alias} = {name}\n")
    return "\n\n".join(parts)


def run_test_module(example: CodeExample, work: Path) -> None:
    """Run the block as a test file with pytest, in a subprocess and a rootdir of its own
    (none of this suite's fixtures), beside the example plugin package."""
    package = work / EXAMPLE_PLUGIN
    package.mkdir()
    (package / "__init__.py").write_text(example_plugin_source(example.path))
    (work / "pytest.ini").write_text("[pytest]\n")
    test_file = work / f"test_{example.module_name}.py"
    test_file.write_text(example.source)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file.name]
    python_path = os.pathsep.join(filter(None, [str(work), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        command,
        cwd=work,
        env={**os.environ, "PYTHONPATH": python_path},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"the tests of the block at {example} failed:\n{output}"
    assert re.search(r"\b[1-9]\d* passed\b", output), output


# --- the tests --------------------------------------------------------------------------


@pytest.mark.usefixtures("loopback_only", "plain_tracebacks")
@pytest.mark.parametrize(
    "example", EXAMPLES, ids=[label(example.path, example.start_line) for example in EXAMPLES]
)
def test_python_block_runs(
    example: CodeExample,
    eval_example: EvalExample,
    docs_home: Path,
    use_backends: Callable[[str], list[Backend]],
) -> None:
    reason = skip_reason(example)
    if reason is not None:
        pytest.skip(reason)
    if TEST_MODULE.search(example.source):
        run_test_module(example, docs_home)
        return
    source = example.source
    for backend in use_backends(source):
        source = backend.localize(source)
    runnable = dataclasses.replace(example, source=source)
    outside = {path for path in named_paths(source) if not path.exists()}
    try:
        if "#>" not in source:
            eval_example.run(runnable)
        elif eval_example.update_examples and source == example.source:
            eval_example.run_print_update(runnable)  # pytest --update-examples
        else:
            eval_example.run_print_check(runnable)
    except Exception as exc:
        exc.add_note(where_in_docs(exc, example))
        raise
    created = sorted(str(path) for path in outside if path.exists())
    assert not created, f"the block at {example} wrote outside its temporary folder: {created}"


# --- TOML -------------------------------------------------------------------------------

#: A fenced block: its indent, its info string's first word, its text.
FENCE = re.compile(r"^( *)```[ \t]*(\S*)[^\n]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


@dataclasses.dataclass(frozen=True)
class TomlBlock:
    path: Path
    line: int
    text: str


def toml_blocks() -> list[TomlBlock]:
    found = []
    for path in doc_files():
        content = path.read_text("utf-8")
        for match in FENCE.finditer(content):
            indent, language, body = match.groups()
            if language.lower() == "toml":
                text = "\n".join(row[len(indent) :] for row in body.splitlines())
                found.append(TomlBlock(path, content.count("\n", 0, match.start()) + 1, text))
    return found


TOML_BLOCKS = toml_blocks()


def settings_tables(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The moorage settings a TOML block holds: ``[tool.moorage]`` of a pyproject.toml, or
    the top level of a moorage.toml (a block whose keys are all names of settings)."""
    tool = data.get("tool", {})
    if "moorage" in tool:
        yield tool["moorage"]
    elif data and set(data) <= set(MoorageSettings.model_fields):
        yield data


@pytest.mark.parametrize(
    "block", TOML_BLOCKS, ids=[label(block.path, block.line) for block in TOML_BLOCKS]
)
def test_toml_block_parses(block: TomlBlock) -> None:
    data = tomllib.loads(block.text)
    for table in settings_tables(data):
        MoorageSettings.model_validate(table)


# --- the harness itself -----------------------------------------------------------------


def test_the_docs_blocks_are_found() -> None:
    """A change of fence style or of the finders cannot make these tests test nothing."""
    pages = {example.path.relative_to(ROOT).as_posix() for example in EXAMPLES}
    assert {"README.md", "docs/index.md", "docs/usage.md", "docs/backends/s3.md"} <= pages
    assert len(EXAMPLES) >= 40
    assert {block.path.name for block in TOML_BLOCKS} >= {"README.md", "configuration.md"}


def test_a_skipped_block_must_say_why() -> None:
    assert skip_reason(CodeExample.create("x = 1\n", prefix="python")) is None
    marked = CodeExample.create("x = 1\n", prefix='python test="skip" reason="needs AWS"')
    assert skip_reason(marked) == "needs AWS"
    with pytest.raises(ValueError, match="needs reason="):
        skip_reason(CodeExample.create("x = 1\n", prefix='python test="skip"'))


def test_a_block_gets_the_servers_its_source_names() -> None:
    source = 'ResultStore(result_storage="gs://results/runs", lock_manager="redis://h:1/0")'
    assert needed_backends(source) == ["gcs", "redis"]
    assert needed_backends('storage_from("gcs://b/p")') == ["gcs"]
    assert needed_backends("from moorage_s3 import S3Storage") == ["s3"]
    assert needed_backends('ResultStore(result_storage="./results")') == []
    assert GCSBackend.bucket_urls is not None
    assert set(GCSBackend.bucket_urls.findall(source)) == {"results"}
    url = 'ResultStore(result_storage="abfs://results@acct.dfs.core.windows.net/daily")'
    assert AzureBackend.bucket_urls is not None
    assert AzureBackend.bucket_urls.findall(url) == ["results"]


def test_the_network_guard_allows_loopback_only() -> None:
    assert _is_loopback("127.0.0.1")
    assert _is_loopback("::1")
    assert _is_loopback("localhost")
    assert not _is_loopback("storage.googleapis.com")
    assert not _is_loopback("10.0.0.1")
    assert named_paths('LocalStorage("file:///data/results?durable=true", p="/var/x")') == {
        Path("/data/results"),
        Path("/var/x"),
    }

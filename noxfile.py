"""Project tasks. The README's two commands run them:

    python3.11 -m nox -s demo                                               # the quick start
    python3.11 -m nox -s tests lint typecheck docs build smoke bench_smoke  # the suite

Virtualenvs are made with uv (``pip install "nox[uv]"``), and every session installs
the versions locked in uv.lock (``uv sync --locked``): after changing a pyproject.toml,
run ``uv lock`` and commit uv.lock with it.
"""

from __future__ import annotations

import shutil
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs", "build", "smoke", "bench_smoke"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PYTHON = "3.11"
# Every distribution in packages/; `uv sync` installs them editable from the workspace.
PACKAGES = sorted(
    str(p.relative_to(ROOT))
    for p in (ROOT / "packages").iterdir()
    if (p / "pyproject.toml").exists()
)
# Azurite (the Azure Blob emulator) from npm, at the versions locked in its
# package-lock.json, installed into a project-local folder.
AZURITE_LOCK = ROOT / "tests" / "servers" / "azurite"
AZURITE_DIR = ROOT / ".tools" / "azurite"


def uv_bin() -> str:
    """uv, as installed by ``pip install "nox[uv]"`` (which may not be on PATH)."""
    try:
        from uv import find_uv_bin
    except ImportError:
        return shutil.which("uv") or "uv"
    return str(find_uv_bin())


def sync(
    session: nox.Session, *groups: str, package: str | None = None, workspace: bool = True
) -> None:
    """Install exactly the versions in uv.lock into the session's virtualenv: the
    workspace (or one ``package`` of it and what it needs, or nothing of it when not
    ``workspace``) plus the dependency ``groups`` of the root pyproject.toml.
    ``--locked`` fails when pyproject.toml and uv.lock disagree (run ``uv lock`` and
    commit the result)."""
    venv = session.virtualenv.location
    flag = "--group" if workspace else "--only-group"
    selection = ["--package", package] if package else [f"{flag}={g}" for g in groups]
    session.run_install(
        uv_bin(), "sync", "--locked", f"--python={venv}", *selection,
        env={"UV_PROJECT_ENVIRONMENT": venv}, external=True,
    )  # fmt: skip


def export_lock(session: nox.Session, *groups: str) -> str:
    """The locked versions of the workspace's dependencies and of ``groups``, as a
    requirements file (for environments built from wheels instead of the workspace)."""
    target = Path(session.create_tmp()) / "locked-requirements.txt"
    session.run(
        uv_bin(), "export", "--locked", "--format=requirements.txt", "--no-hashes",
        "--all-packages", "--no-emit-workspace", *(f"--group={g}" for g in groups),
        f"--output-file={target}", silent=True, external=True,
    )  # fmt: skip
    return str(target)


def install_azurite(session: nox.Session) -> None:
    """``npm ci`` from the committed lock, unless that exact lock is installed already."""
    lock = (AZURITE_LOCK / "package-lock.json").read_bytes()
    installed = AZURITE_DIR / "package-lock.json"
    ready = (AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob").exists()
    if ready and installed.exists() and installed.read_bytes() == lock:
        return
    AZURITE_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(AZURITE_LOCK / name, AZURITE_DIR / name)
    session.run(
        "npm", "ci", "--prefix", str(AZURITE_DIR), "--no-audit", "--no-fund", "--loglevel=error",
        external=True,
    )  # fmt: skip


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (pass pytest options after --)."""
    sync(session, "test", "test-plugins", "servers", "scale", "data")
    install_azurite(session)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def ray(session: nox.Session) -> None:
    """Tasks on a local Ray instance (tests/on_ray): exactly-once calls
    on Ray's worker processes. Ray is too heavy for the main suite on two cores."""
    sync(session, "test", "servers", "ray")
    session.run("pytest", "tests/on_ray", *session.posargs, env={"MOORAGE_RAY_TESTS": "1"})


def build_distributions(session: nox.Session, out: Path) -> tuple[list[Path], list[Path]]:
    """Wheels and sdists of every distribution in packages/, into ``out``."""
    if out.exists():
        shutil.rmtree(out)
    session.run(uv_bin(), "build", "--all-packages", "--out-dir", str(out), external=True)
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    if len(wheels) != len(PACKAGES) or len(sdists) != len(PACKAGES):
        session.error(
            f"expected a wheel and an sdist for each of {PACKAGES}, got {wheels + sdists}"
        )
    return wheels, sdists


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Wheels and sdists of all seven distributions into dist/, their metadata checked
    with ``twine check --strict``. Install from them with
    ``pip install "moorage[s3,redis]" --find-links dist/``."""
    sync(session, "build", workspace=False)
    wheels, sdists = build_distributions(session, ROOT / "dist")
    session.run("twine", "check", "--strict", *map(str, wheels + sdists))
    problems = [problem for wheel in wheels for problem in metadata_problems(wheel)]
    if problems:
        session.error("wheel metadata:\n  " + "\n  ".join(problems))


#: The extras of the core distribution, one per backend plus ``all`` (and the test kit).
EXTRAS = {"s3", "gcs", "azure", "redis", "msgpack", "all", "testing"}


def metadata_problems(wheel: Path) -> list[str]:
    """What is wrong with a wheel's METADATA beyond what twine checks: the license, and
    sibling distributions pinned to this very version (the extras install them)."""
    with zipfile.ZipFile(wheel) as archive:
        path = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = HeaderParser().parsestr(archive.read(path).decode())
    name, version = meta["Name"], meta["Version"]
    problems = []
    if meta["License-Expression"] != "Apache-2.0" or meta["License-File"] != "LICENSE":
        problems.append(f"{name}: expected License-Expression Apache-2.0 with its LICENSE file")
    for requirement in meta.get_all("Requires-Dist") or []:
        if requirement.startswith("moorage") and f"=={version}" not in requirement:
            problems.append(f"{name}: {requirement!r} does not pin the sibling to {version}")
    if name == "moorage" and set(meta.get_all("Provides-Extra") or []) != EXTRAS:
        problems.append(f"moorage: extras {meta.get_all('Provides-Extra')}, expected {EXTRAS}")
    return problems


@nox.session(python=PYTHON)
def smoke(session: nox.Session) -> None:
    """Build every wheel, install moorage[s3,gcs,azure,redis,msgpack] from them into this
    fresh virtualenv (no editable installs, third-party packages at their locked
    versions), and run the smoke tests against the emulators: what a user gets from pip
    works."""
    wheels, _ = build_distributions(session, Path(session.create_tmp()) / "dist")
    core = next(str(w) for w in wheels if w.name.startswith("moorage-0"))
    # The sibling wheels are given as files, so they (not an index) satisfy the extras.
    locked = export_lock(session, "test", "servers")
    session.install("-r", locked, f"{core}[s3,gcs,azure,redis,msgpack]", *map(str, wheels))
    install_azurite(session)
    session.run("pytest", "tests/smoke", *session.posargs, env={"MOORAGE_SMOKE": "1"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting (ruff is pinned: formatting must not change under CI)."""
    sync(session, "lint", workspace=False)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over packages/*/src, against the locked client libraries."""
    sync(session, "typecheck", "test", "data")
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site with --strict."""
    sync(session, "docs")
    site = Path(session.create_tmp()) / "site"
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", str(site), env={"NO_MKDOCS_2_WARNING": "1"}
    )


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The quick start: results persisted by one process, found by the next. Only what
    ``pip install moorage`` gives (the core and moorage-local), no extras."""
    sync(session, package="moorage")
    session.run("python", "examples/quickstart.py", *session.posargs)


def install_bench(session: nox.Session) -> None:
    """The workspace, the baselines (Prefect 3, diskcache, joblib), moto, redis-server
    and pytest; the benchmarks start moto and redis only, so no Azurite."""
    sync(session, "bench", "servers", "test", "data")


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


@nox.session(python=PYTHON)
def prefect_fixtures(session: nox.Session) -> None:
    """Write the Prefect sample records in tests/fixtures/ anew, with the Prefect version
    the bench session measures against."""
    sync(session, "bench")
    session.run("python", "tests/fixtures/regenerate_prefect.py", *session.posargs)

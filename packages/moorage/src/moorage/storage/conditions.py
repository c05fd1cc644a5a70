"""Write conditions (create only, replace only a version), the `WriteConflict` a failed
one raises, and what a prune reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moorage.errors import ConfigurationError, WriteConflict

__all__ = ["ALWAYS", "IF_ABSENT", "PruneReport", "WriteCondition", "write_conflict"]


@dataclass(frozen=True)
class PruneReport:
    """What a prune removed, or with ``dry_run`` would have removed: ``records`` records
    (their keys in ``keys``, in the order they went) out of ``examined`` listed, and
    ``files`` temporary files left by killed writers; ``bytes`` freed in all (records
    counted at the size their storage's listing gives)."""

    files: int = 0
    bytes: int = 0
    records: int = 0
    keys: tuple[str, ...] = ()
    examined: int = 0
    dry_run: bool = False

    def __add__(self, other: PruneReport) -> PruneReport:
        return PruneReport(
            files=self.files + other.files,
            bytes=self.bytes + other.bytes,
            records=self.records + other.records,
            keys=self.keys + other.keys,
            examined=self.examined + other.examined,
            dry_run=self.dry_run or other.dry_run,
        )


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """When a write may happen: ``if_absent``, only where nothing is stored;
    ``if_version``, only over that version of the object; neither, always."""

    if_absent: bool = False
    if_version: str | None = None

    def __post_init__(self) -> None:
        if self.if_absent and self.if_version is not None:
            raise ConfigurationError(
                "a write takes if_absent=True (create) or if_version=... (replace), not "
                "both: an object cannot be missing and at a version"
            )

    def __bool__(self) -> bool:
        """Whether there is a condition at all."""
        return self.if_absent or self.if_version is not None

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments that pass this condition on to a storage's write; none
        when there is no condition, so a backend that declares no conditional writes is
        called as before."""
        if self.if_absent:
            return {"if_absent": True}
        if self.if_version is not None:
            return {"if_version": self.if_version}
        return {}


#: No condition: the write replaces whatever is stored.
ALWAYS = WriteCondition()
#: Create only: the write fails with `WriteConflict` if anything is stored.
IF_ABSENT = WriteCondition(if_absent=True)


def write_conflict(key: str, url: str, if_version: str | None) -> WriteConflict:
    """The `WriteConflict` of a failed conditional write, in the words every backend uses."""
    if if_version is None:
        return WriteConflict(
            f"record {key!r} in {url} was written by someone else first; nothing was "
            "written. Read the record that is there, or write with overwrite"
        )
    return WriteConflict(
        f"record {key!r} in {url} changed since version {if_version!r} was read (another "
        "writer committed, or it was deleted); nothing was written. Read it again"
    )

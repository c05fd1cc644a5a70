"""Explanations of cache keys: the parts a key was made of, and why two keys differ.

`moorage.Task.explain_key` returns a `KeyExplanation`; ``moorage explain`` prints one,
or two side by side. Each `KeyPart` names where it comes from (a parameter, the task's
source, a function the code-aware policy followed, the cache version), how it was
hashed (the hasher used) and its digest: two calls whose keys differ differ in at
least one part's digest, and `KeyExplanation.differences` lists those parts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

__all__ = ["Difference", "KeyExplanation", "KeyPart"]


@dataclass(frozen=True)
class KeyPart:
    """One part of a key."""

    #: What the part comes from: "parameter", "task source", "code", "cache_key_fn",
    #: "cache version", "storage key template".
    source: str
    #: Its name: the parameter's, the function's or the dependency's ("" for none).
    name: str
    #: How it was hashed: the encoding or hasher used, or why it was left out.
    how: str
    #: The part's own digest ("" where it has none: left out, or cannot be hashed).
    digest: str

    @property
    def label(self) -> str:
        return f"{self.source} {self.name}".strip()


#: A part that differs between two explanations: its label, then each side's part
#: (None where that side has no such part).
Difference: TypeAlias = tuple[str, KeyPart | None, KeyPart | None]


@dataclass(frozen=True)
class KeyExplanation:
    """The key of one call of a task, and its parts."""

    task: str
    #: The cache policy, as written (``INPUTS - 'verbose' + TASK_SOURCE``).
    policy: str
    #: The key the call reads and writes under; None: the call runs uncached.
    key: str | None
    parts: tuple[KeyPart, ...]
    #: Why the call is uncached, or how its key was made otherwise ("" if nothing).
    note: str = ""

    def differences(
        self, other: KeyExplanation
    ) -> list[tuple[str, KeyPart | None, KeyPart | None]]:
        """The parts that differ between two explanations, by label: a part present on
        one side only, or with another digest or hasher."""
        mine = {part.label: part for part in self.parts}
        theirs = {part.label: part for part in other.parts}
        labels = list(mine) + [label for label in theirs if label not in mine]
        found: list[Difference] = []
        for label in labels:
            a, b = mine.get(label), theirs.get(label)
            if a is None or b is None or (a.digest, a.how) != (b.digest, b.how):
                found.append((label, a, b))
        return found

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        lines = [
            f"task {self.task!r}, policy {self.policy}",
            f"key: {self.key if self.key is not None else '(none: the call runs uncached)'}",
        ]
        if self.note:
            lines.append(f"note: {self.note}")
        width = max((len(part.label) for part in self.parts), default=0)
        for part in self.parts:
            digest = part.digest or "-"
            lines.append(f"  {part.label:<{width}}  {digest:<32}  {part.how}")
        return "\n".join(lines)

    def compare(self, other: KeyExplanation) -> str:
        """The two keys, and each part that differs, side by side."""
        same = self.key == other.key and self.key is not None
        lines = [
            f"first key:  {self.key}",
            f"second key: {other.key}",
            "the keys are equal" if same else "the keys differ",
        ]
        for label, a, b in self.differences(other):
            left = f"{a.digest or '-'} ({a.how})" if a is not None else "(absent)"
            right = f"{b.digest or '-'} ({b.how})" if b is not None else "(absent)"
            lines.append(f"  {label}: {left}  vs  {right}")
        if self.note != other.note:
            lines.append(f"  note: {self.note or '-'}  vs  {other.note or '-'}")
        return "\n".join(lines)

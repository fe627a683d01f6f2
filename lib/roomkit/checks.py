"""One line of a checklist that a command or notebook prints: what was checked, whether it
passed, and why (preflight before a deploy, the image build's prerequisites, the smoke test)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["Check"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    #: The word printed for a check that did not pass.
    failed: ClassVar[str] = "FAIL"

    def __str__(self) -> str:
        return f"[{'ok' if self.ok else self.failed}] {self.name}: {self.detail}"

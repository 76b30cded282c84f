"""What a watched browser context did that it should not have (see conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Watch"]


@dataclass
class Watch:
    """What a browser context did that it should not have."""

    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    """Parts of console errors a test provokes on purpose (a 401 page, say)."""

    def unexpected(self) -> list[str]:
        """The console errors no test asked for."""
        return [e for e in self.errors if not any(part in e for part in self.expected)]

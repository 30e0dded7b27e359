"""Spec errors that name the file, the field path and what would be valid."""

from __future__ import annotations


class SpecError(Exception):
    """One or more problems in one spec file."""

    def __init__(self, file: str, path: str, reason: str, *more: tuple[str, str]) -> None:
        self.file = file
        self.problems: list[tuple[str, str]] = [(path, reason), *more]
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(
            f"{self.file}: {path}: {reason}" if path else f"{self.file}: {reason}" for path, reason in self.problems
        )

    @classmethod
    def of(cls, file: str, problems: list[tuple[str, str]]) -> SpecError:
        first, *rest = problems
        return cls(file, first[0], first[1], *rest)

"""One error hierarchy. Every error a user can cause names a place and a reason."""

from __future__ import annotations

from dataclasses import dataclass


class SmartcronError(Exception):
    """Base class: the CLI prints str(error) on one line per problem and exits 1."""


@dataclass(frozen=True, slots=True)
class LineProblem:
    """One bad (or suspicious) line: where it is and what is wrong with it."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


class CrontabSyntaxError(SmartcronError):
    """A crontab with one or more bad lines; like cron, the file is refused whole.

    `partial` is what the parser made of the other lines (their entries and warnings),
    so that a checker can report every problem, not only the bad lines. It is a
    `crontab.Crontab`, typed `object` here because the parser imports this module."""

    def __init__(self, problems: list[LineProblem], partial: object | None = None) -> None:
        self.problems = tuple(problems)
        self.partial = partial
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(SmartcronError):
    """A bad configuration file or value (the message names the file and key)."""


class AnnotationError(SmartcronError):
    """A bad #@smart annotation or companion YAML entry."""

    def __init__(self, problems: list[LineProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

"""The ``#@smart`` keys and the value grammar of each (smartcrontab(5)).

One converter and one JSON Schema fragment per key, shared by the annotations, the
companion YAML, standalone job files and the global config, so a value means the same
thing wherever it is written.

The line grammar (``#@smart key=value ...``) is in smartcron.smart.smartline.

Values (case-insensitive words):
* duration: numbers with a unit ``s m h d``, joinable (``1h30m``), decimals allowed
  (``1.5h``); a bare number is seconds, as in systemd (``timeout=90``); at most 365d.
* percentage: ``50`` or ``50%``, from 0 to 100, decimals allowed.
* boolean: ``yes/no``, ``on/off``, ``true/false``.
* clock window: ``HH:MM-HH:MM`` (24-hour clock, ``H:MM`` too), may wrap midnight
  (``22:00-06:00``), must not be empty.
* ``retry`` 0..100, ``priority`` -1000..1000, ``max_load`` a number >= 0, ``disk_path``
  an absolute path. YAML and JSON take the same strings, and native numbers and
  booleans.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import time, timedelta

from smartcron.errors import AnnotationError, LineProblem

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"
_NUM = r"[0-9]{1,12}(\.[0-9]{1,9})?"
DURATION_PATTERN = rf"^(({_NUM}[smhdSMHD])+|{_NUM})$"
_HHMM = r"([01]?[0-9]|2[0-3]):[0-5][0-9]"
CLOCK_PATTERN = rf"^{_HHMM}-{_HHMM}$"
HHMM_PATTERN = rf"^{_HHMM}$"
PERCENT_PATTERN = rf"^{_NUM}%?$"
NUMBER_PATTERN = rf"^{_NUM}$"
_BOOL_WORDS = {"yes": True, "on": True, "true": True, "no": False, "off": False, "false": False}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = timedelta(days=365)

ENUMS = {
    "on_deadline": ("run", "skip"),
    "overlap": ("allow", "skip", "queue"),
    "mail": ("output", "error", "never"),
    "network": ("online", "unmetered"),
    "fleet": ("each", "once"),
    "catchup": ("once", "all", "no"),
}
# key -> kind of value, in smartcrontab(5)'s order (disk_path is our extension).
KINDS: dict[str, str] = {
    "name": "name",
    "profile": "name",  # a bundle of keys (smartcron.smart.profiles)
    "after": "names",  # jobs whose firings must succeed first (smartcron.smart.depends)
    "window": "window",
    "max_load": "load",
    "max_cpu": "percent",
    "max_ram": "percent",
    "min_battery": "percent",
    "ac": "bool",
    "idle": "duration",
    "min_disk": "percent",
    "disk_path": "path",
    "ai": "bool",
    "explore": "bool",
    "fail_cost": "cost",
    "interference_cost": "cost",
    "delay_cost": "cost",
    "retry": "count",
    "retry_delay": "duration",
    "timeout": "duration",
    "priority": "priority",
    "on_deadline": "enum",
    "overlap": "enum",
    "mail": "enum",
    "max_cpu_pressure": "percent",
    "max_io_pressure": "percent",
    "max_mem_pressure": "percent",
    "network": "enum",
    "fleet": "enum",  # one host of a fleet runs each firing (smartcron.smart.fleet)
    "catchup": "enum",  # after a suspend or a power-off (smartcron.smart.catchup)
    "catchup_window": "duration",
    "jitter": "duration",  # a per-host, per-job offset (smartcron.smart.jitter)
}
KEYS = tuple(KINDS)

_DESCRIBE = {
    "name": "a name of letters, digits, '_', '.' and '-'",
    "names": "job names separated by commas (backup,upload)",
    "window": "a duration (2h) or a clock window (01:00-03:00)",
    "load": "a load average (a number >= 0, like 1.5)",
    "cost": "a cost (a number >= 0, like 0.5)",
    "percent": "a percentage from 0 to 100 (50 or 50%)",
    "bool": "yes/no, on/off or true/false",
    "duration": "a duration (30s, 5m, 2h, 1d, 1h30m; a bare number is seconds)",
    "path": "an absolute path",
    "count": "a whole number from 0 to 100",
    "priority": "a whole number from -1000 to 1000",
}


def describe(key: str) -> str:
    kind = KINDS[key]
    return f"one of {', '.join(ENUMS[key])}" if kind == "enum" else _DESCRIBE[kind]


@dataclass(frozen=True, slots=True)
class FileProblem(LineProblem):
    """A problem with no line to point at (a whole file, a value from the config): line 0."""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def problem(path: str, line: int | None, reason: str) -> LineProblem:
    return FileProblem(path, 0, reason) if line is None else LineProblem(path, line, reason)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'window'?)`` for the closest choice, or ''."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- values


def _number(text: str, what: str) -> float:
    text = text.strip()
    if re.fullmatch(rf"-\s*{_NUM}", text):
        raise ValueError(f"{text} is negative")
    if not re.fullmatch(_NUM, text):
        raise ValueError(f"expected {what}, got {text!r}")
    return float(text)


def _native_number(value: object, what: str) -> float:
    """A YAML/JSON number (never a boolean), or a string in our grammar."""
    if isinstance(value, str):
        return _number(value, what)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected {what}, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected {what}, got {value!r}")
    if number < 0:
        raise ValueError(f"{value} is negative")
    return number


def parse_duration(value: object, what: str = _DESCRIBE["duration"]) -> timedelta:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str) and re.search("[A-Za-z]", value):
        text = value.strip()
        if text.startswith("-"):
            raise ValueError(f"{text} is negative")
        if not re.fullmatch(DURATION_PATTERN, text):
            raise ValueError(f"expected {what}, got {value!r}")
        parts = re.findall(rf"({_NUM})([smhdSMHD])", text)
        seconds = sum(float(n) * _UNITS[u.lower()] for n, _, u in parts)
    else:
        seconds = _native_number(value, what)
    if seconds < 0:
        raise ValueError(f"{value} is negative")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{value} is longer than {MAX_DURATION.days}d")
    return timedelta(seconds=seconds)


def parse_clock(text: str) -> time:
    if not re.fullmatch(_HHMM, text.strip()):
        raise ValueError(f"expected a time of day HH:MM, got {text!r}")
    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


def parse_clock_window(value: object) -> tuple[time, time]:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(t, time) for t in value):
        start, end = value
    elif isinstance(value, str) and re.fullmatch(CLOCK_PATTERN, value.strip()):
        first, second = value.strip().split("-")
        start, end = parse_clock(first), parse_clock(second)
    else:
        raise ValueError(f"expected a clock window HH:MM-HH:MM, got {value!r}")
    if start == end:
        raise ValueError(f"clock window {value!r} is empty")
    return (start, end)


def _window(value: object) -> timedelta | tuple[time, time]:
    if isinstance(value, tuple) or (isinstance(value, str) and ":" in value):
        return parse_clock_window(value)
    return parse_duration(value, _DESCRIBE["window"])


def _percent(value: object) -> float:
    what = _DESCRIBE["percent"]
    text = value.strip() if isinstance(value, str) else None
    number = _native_number(text.removesuffix("%") if text else value, what)
    if number > 100:
        raise ValueError(f"{number:g}% is over 100%")
    return number


def _load(value: object) -> float:
    return _native_number(value, _DESCRIBE["load"])


def parse_bool(value: object, what: str = _DESCRIBE["bool"]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.strip().lower()]
    raise ValueError(f"expected {what}, got {value!r}")


def _integer(value: object, low: int, high: int, what: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9]{1,12}\s*", value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise ValueError(f"expected {what}, got {value!r}")
    if number < 0 <= low:
        raise ValueError(f"{number} is negative")
    if not low <= number <= high:
        raise ValueError(f"{number} is outside {low}..{high}")
    return number


def _name(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(NAME_PATTERN, value):
        raise ValueError(f"expected {_DESCRIBE['name']} (at most 128), got {value!r}")
    return value


def _names(value: object) -> tuple[str, ...]:
    words = value.split(",") if isinstance(value, str) else value  # a,b or a YAML list
    if not isinstance(words, list | tuple) or not 0 < len(words) <= 32:
        raise ValueError(f"expected {_DESCRIBE['names']} (1 to 32), got {value!r}")
    return tuple(dict.fromkeys(_name(w.strip() if isinstance(w, str) else w) for w in words))


def _path(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
        raise ValueError(f"expected {_DESCRIBE['path']}, got {value!r}")
    if len(value) > 4096:
        raise ValueError("path longer than 4096 characters")
    return value


def _choice(key: str) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if isinstance(value, str) and value.strip().lower() in ENUMS[key]:
            return value.strip().lower()
        hint = suggest(value, ENUMS[key]) if isinstance(value, str) else ""
        raise ValueError(f"expected {describe(key)}, got {value!r}{hint}")

    return convert


_CONVERTERS: dict[str, Callable[[object], object]] = {
    "name": _name,
    "names": _names,
    "window": _window,
    "load": _load,
    "cost": lambda v: _native_number(v, _DESCRIBE["cost"]),
    "percent": _percent,
    "bool": parse_bool,
    "duration": parse_duration,
    "path": _path,
    "count": lambda v: _integer(v, 0, 100, _DESCRIBE["count"]),
    "priority": lambda v: _integer(v, -1000, 1000, _DESCRIBE["priority"]),
}


def convert(key: str, value: object) -> object:
    """The typed value of one 4.1 key. Idempotent. Raises ValueError(reason) or KeyError."""
    kind = KINDS[key]
    result = _choice(key)(value) if kind == "enum" else _CONVERTERS[kind](value)
    if key == "timeout" and result == timedelta(0):
        raise ValueError("must be longer than 0s")
    return result


def check_settings(settings: Mapping[str, object], origin: str) -> dict[str, object]:
    """Typed values for a mapping of 4.1 keys (global config, tests); `origin` names it.

    `name` is refused: a name belongs to one job. Raises AnnotationError.
    """
    out: dict[str, object] = {}
    problems: list[LineProblem] = []
    for key, value in settings.items():
        if key == "name" or key not in KINDS:
            hint = " (a name belongs to one job)" if key == "name" else suggest(str(key), KEYS)
            problems.append(problem(origin, None, f"unknown key {key!r}{hint}"))
            continue
        try:
            out[key] = convert(key, value)
        except ValueError as err:
            problems.append(problem(origin, None, f"{key}: {err}"))
    if problems:
        raise AnnotationError(problems)
    return out

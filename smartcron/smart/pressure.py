"""Linux pressure stall information (PSI): the `some avg10` of /proc/pressure/{cpu,io,memory}.

Each file reads like (kernel Documentation/accounting/psi.rst)::

    some avg10=1.53 avg60=0.87 avg300=0.40 total=1234567
    full avg10=0.00 avg60=0.00 avg300=0.00 total=0

`some avg10` is the share of the last 10 seconds in which at least one task was stalled
on the resource, in percent. The load average mixes tasks blocked on I/O with runnable
ones; PSI says which resource the machine is short of. Kernels before 4.20, kernels
booted with ``psi=0`` (reading then fails with EOPNOTSUPP) and containers that hide
/proc/pressure have none: the reading is None, and the caller reports it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PSI_ROOT = Path("/proc/pressure")
# snapshot field -> file under PSI_ROOT
RESOURCES = (("cpu_pressure", "cpu"), ("io_pressure", "io"), ("mem_pressure", "memory"))
_MAX_BYTES = 4096  # the files are two short lines


class PressureError(ValueError):
    """A PSI file that does not read as PSI."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One resource's `some avg10` (percent), or None with the reason it is missing."""

    value: float | None
    problem: str | None = None


def parse_some_avg10(text: str) -> float:
    """The `some avg10` percentage of a PSI file's text. Raises PressureError."""
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] != "some":
            continue
        fields = dict(word.partition("=")[::2] for word in words[1:])
        raw = fields.get("avg10")
        if raw is None:
            raise PressureError("its 'some' line has no avg10= field")
        try:
            value = float(raw)
        except ValueError:
            raise PressureError(f"avg10={raw!r} is not a number") from None
        if not 0.0 <= value <= 100.0:  # also refuses nan and inf
            raise PressureError(f"avg10={raw} is not a percentage")
        return value
    raise PressureError("no 'some' line")


def read_pressure(path: Path) -> Reading:
    """A PSI file's `some avg10`; a missing, unreadable or malformed file is None with why."""
    try:
        with open(path, "rb") as psi_file:
            data = psi_file.read(_MAX_BYTES)
    except FileNotFoundError:
        return Reading(None, f"{path} does not exist (a kernel or container without PSI)")
    except OSError as err:
        return Reading(None, f"cannot read {path}: {err.strerror or err}")
    try:
        return Reading(parse_some_avg10(data.decode("ascii")))
    except UnicodeDecodeError:
        return Reading(None, f"{path} is malformed: not text")
    except PressureError as err:
        return Reading(None, f"{path} is malformed: {err}")


def read_all(root: Path = PSI_ROOT) -> dict[str, Reading]:
    """Snapshot field -> Reading for cpu, io and memory under `root`."""
    return {field: read_pressure(root / name) for field, name in RESOURCES}

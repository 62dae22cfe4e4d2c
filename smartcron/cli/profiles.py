"""smartcronctl profiles: the policy profiles a job may name with profile=, their keys,
and the file each came from (smartcron.smart.profiles)."""

from __future__ import annotations

import sys
from datetime import time, timedelta
from typing import Any

import click

from smartcron.cli.common import CONTEXT, print_json, user_errors


def value_text(value: object) -> str:
    """A typed key value as it is written on a #@smart line (``10m``, ``yes``, ``a,b``)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, timedelta):
        seconds, out = int(value.total_seconds()), ""
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            count, seconds = divmod(seconds, size)
            out += f"{count}{unit}" if count else ""
        return out or "0s"
    if isinstance(value, tuple) and value and isinstance(value[0], time):
        return "-".join(t.strftime("%H:%M") for t in value)
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def profiles_doc() -> dict[str, Any]:
    """What `profiles --json` prints."""
    from smartcron.smart.profiles import catalog, search_path

    found = catalog()
    return {
        "search_path": [{"origin": origin, "dir": str(path)} for origin, path in search_path()],
        "profiles": [
            {
                "name": p.name,
                "origin": p.origin,
                "path": p.path,
                "description": p.description,
                "keys": {key: value_text(value) for key, value in p.keys.items()},
                "overrides": list(p.overrides),
            }
            for p in sorted(found.profiles.values(), key=lambda p: p.name)
        ],
        "broken": [
            {"name": name, "problems": [str(problem) for problem in err.problems]}
            for name, err in sorted(found.broken.items())
        ],
    }


@click.command("profiles", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def profiles_cmd(as_json: bool) -> None:
    """List the policy profiles a job can name with profile=NAME: each one's keys, and
    the file it came from (shipped, /etc/smartcron/profiles, or your
    ~/.config/smartcron/profiles; a later one overrides an earlier one of the same
    name). Exits 1 when a profile file is broken.

    \b
    Examples:
      smartcronctl profiles
      smartcronctl profiles --json
    """
    doc = profiles_doc()
    if as_json:
        print_json(doc)
    else:
        for item in doc["profiles"]:
            click.echo(f"{item['name']}  ({item['origin']}: {item['path']})")
            if item["description"]:
                click.echo(f"  {item['description']}")
            keys = " ".join(f"{key}={value}" for key, value in item["keys"].items())
            click.echo(f"  #@smart {keys}")
            for path in item["overrides"]:
                click.echo(f"  overrides {path}")
        for item in doc["broken"]:
            click.echo(f"{item['name']}  (broken: not used)")
            for line in item["problems"]:
                click.echo(f"  {line}")
        if not doc["profiles"] and not doc["broken"]:
            dirs = ", ".join(d["dir"] for d in doc["search_path"])
            click.echo(f"no profiles (looked in {dirs})")
    if doc["broken"]:
        sys.exit(1)

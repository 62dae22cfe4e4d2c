"""Policy profiles: named bundles of #@smart keys and decision costs (smartcrontab(5),
PROFILES). A job takes one with ``profile=NAME`` (or a companion's ``defaults:``).

A profile is a file ``NAME.yaml``, read with the guarded YAML loader and checked against
the same JSON Schema and converters as a companion's keys::

    description: wait for mains power and an idle user
    keys:
      ac: yes
      idle: 10m

Profiles are looked for in three directories; a later one wins by name, so an
administrator's file overrides a shipped one and a user's overrides both:

1. the shipped ones (package data: ``smartcron/profiles``);
2. ``/etc/smartcron/profiles``;
3. the user's config directory (platformdirs, as the user config is found):
   ``~/.config/smartcron/profiles``.

A profile never names ``name`` (one job's) nor ``profile`` (profiles do not nest).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartcron.errors import AnnotationError, LineProblem
from smartcron.smart import safeyaml
from smartcron.smart.annotations import KEYS, problem, suggest
from smartcron.smart.settingschema import convert_all, schema_problems, settings_schema

SYSTEM_DIR = Path("/etc/smartcron/profiles")
MAX_PROFILE_BYTES = 64 * 1024
SUFFIX = ".yaml"

_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "description": "a mapping with description: and keys:",
    "type": "object",
    "additionalProperties": False,
    "required": ["keys"],
    "properties": {
        "description": {"type": "string", "maxLength": 200, "description": "one line of text"},
        "keys": settings_schema([key for key in KEYS if key != "name"]),
    },
}


@dataclass(frozen=True, kw_only=True)
class Profile:
    """One profile file: its typed keys, where it came from, and the files it overrides."""

    name: str
    path: str
    origin: str  # shipped, system or user
    description: str = ""
    keys: Mapping[str, object] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()  # the paths of the same name it hides, lowest first


def shipped_dir() -> Path:
    """The profiles installed with the package."""
    return Path(__file__).resolve().parents[1] / "profiles"


def user_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("smartcron")) / "profiles"


def search_path() -> list[tuple[str, Path]]:
    """(origin, directory), lowest precedence first."""
    return [("shipped", shipped_dir()), ("system", SYSTEM_DIR), ("user", user_dir())]


def load_profile(text: str, path: str, origin: str = "user") -> Profile:
    """Parse and check one profile file. Raises AnnotationError (``path:line: why``)."""
    try:
        data, root = safeyaml.load_yaml(text, path, what="profile", max_bytes=MAX_PROFILE_BYTES)
    except safeyaml.YamlError as err:
        raise AnnotationError([problem(path, err.line, err.reason)]) from None
    if data is None:
        raise AnnotationError([problem(path, None, "empty profile (expected keys:)")])
    problems = schema_problems(data, _SCHEMA, path, root, extra_hint=" (a name belongs to one job)")
    if problems:
        raise AnnotationError(problems)
    raw = data.get("keys") or {}
    if "profile" in raw:
        line = safeyaml.locate(root, ["keys", "profile"])
        why = "keys.profile: a profile cannot name a profile (profiles do not nest)"
        raise AnnotationError([problem(path, line, why)])
    keys = convert_all(raw, ["keys"], path, root, problems)
    if problems:
        raise AnnotationError(problems)
    name = Path(path).name.removesuffix(SUFFIX)
    text_of = str(data.get("description") or "").strip()
    return Profile(name=name, path=path, origin=origin, description=text_of, keys=keys)


@dataclass(frozen=True)
class Catalog:
    """Every profile found (the winner of each name), and the files that failed."""

    profiles: Mapping[str, Profile]
    broken: Mapping[str, AnnotationError]  # name -> why its winning file is refused

    def find(self, name: str) -> Profile:
        """The profile `name`. Raises LookupError(reason): unknown (with the nearest
        name) or broken (with its file's problems)."""
        if name in self.profiles:
            return self.profiles[name]
        if name in self.broken:
            details = "; ".join(str(p) for p in self.broken[name].problems)
            raise LookupError(f"profile {name!r} is broken: {details}")
        known = sorted({*self.profiles, *self.broken})
        where = ", ".join(known) if known else "none installed"
        raise LookupError(f"unknown profile {name!r}{suggest(name, known)} (known: {where})")


def _files(directory: Path) -> list[Path]:
    try:
        names = sorted(os.listdir(directory))
    except OSError:  # absent or unreadable: no profiles there
        return []
    return [directory / n for n in names if n.endswith(SUFFIX) and not n.startswith(".")]


def _stamps(dirs: Sequence[tuple[str, Path]]) -> tuple[object, ...]:
    out: list[object] = []
    for _, directory in dirs:
        for file in _files(directory):
            try:
                st = file.stat()
            except OSError:
                continue
            out.append((str(file), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


_cache: dict[tuple[object, ...], Catalog] = {}


def catalog(dirs: Sequence[tuple[str, Path]] | None = None) -> Catalog:
    """The profiles of `dirs` (default: search_path()), read again when a file changed."""
    dirs = list(dirs) if dirs is not None else search_path()
    key = (tuple((o, str(d)) for o, d in dirs), _stamps(dirs))
    if key not in _cache:
        _cache.clear()  # only the current state is worth keeping
        _cache[key] = _read_catalog(dirs)
    return _cache[key]


def _read_catalog(dirs: Sequence[tuple[str, Path]]) -> Catalog:
    profiles: dict[str, Profile] = {}
    broken: dict[str, AnnotationError] = {}
    hidden: dict[str, list[str]] = {}
    for origin, directory in dirs:
        for file in _files(directory):
            name = file.name.removesuffix(SUFFIX)
            if name in profiles or name in broken:
                hidden.setdefault(name, []).append(
                    profiles[name].path if name in profiles else str(broken[name].problems[0].path)
                )
            profiles.pop(name, None)
            broken.pop(name, None)
            try:
                text = file.read_bytes().decode("utf-8", "surrogateescape")
                profiles[name] = load_profile(text, str(file), origin)
            except AnnotationError as err:
                broken[name] = err
            except OSError as err:
                broken[name] = AnnotationError([LineProblem(str(file), 0, err.strerror or "")])
    for name, paths in hidden.items():
        if name in profiles:
            old = profiles[name]
            profiles[name] = Profile(name=old.name, path=old.path, origin=old.origin,
                                     description=old.description, keys=old.keys,
                                     overrides=tuple(paths))  # fmt: skip
    return Catalog(profiles, broken)


def keys_of(name: str) -> Mapping[str, object]:
    """The typed keys of profile `name` from the search path. Raises LookupError."""
    return catalog().find(name).keys

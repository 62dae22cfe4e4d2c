"""A fleet's PostgreSQL URL (config `history_url`): checked, redacted, connected.

The URL is a libpq one and never carries a password: libpq reads ~/.pgpass (or
$PGPASSFILE) itself, and config `history_password_file` names a file holding one. A
URL shown in a message or a log line goes through `redact` first. No psycopg here:
the light commands check a config file without loading the driver."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

SCHEMES = ("postgresql", "postgres")
_USERINFO = re.compile(r"(postgres(?:ql)?://)([^@/?#]*)@")
_QUERY_PASSWORD = re.compile(r"(password=)[^&\s]*", re.IGNORECASE)


def url_problem(url: object) -> str | None:
    """Why `url` cannot be a history_url, or None."""
    if not isinstance(url, str) or not url:
        return "must be a postgresql:// URL"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as err:
        return f"not a URL: {err}"
    if parts.scheme not in SCHEMES:
        return f"must be a postgresql:// URL, not {redact(url)!r}"
    query = urllib.parse.parse_qs(parts.query)
    if parts.password is not None or "password" in {k.lower() for k in query}:
        return "must not hold a password: use ~/.pgpass or history_password_file"
    return None


def redact(text: str) -> str:
    """`text` with every postgresql:// URL's user info and password= value hidden."""
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2).split(':')[0]}:***@"
                         if ":" in m.group(2) else m.group(0), text)  # fmt: skip
    return _QUERY_PASSWORD.sub(r"\1***", text)


def read_password(file: Path | None) -> str | None:
    """The password in `file` (its first line), None without a file. OSError if it
    cannot be read; a file others may read is refused, as libpq refuses such a .pgpass."""
    if file is None:
        return None
    if file.stat().st_mode & 0o077:
        raise PermissionError(f"{file}: group or others may read it (chmod 600)")
    return file.read_text(encoding="utf-8").splitlines()[0] if file.stat().st_size else ""


def connect_kwargs(url: str, password_file: Path | None) -> dict[str, object]:
    """psycopg.connect's arguments: the URL as conninfo, the password apart from it."""
    out: dict[str, object] = {"conninfo": url, "connect_timeout": 5}
    password = read_password(password_file)
    if password is not None:
        out["password"] = password
    return out

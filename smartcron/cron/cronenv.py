"""Environment lines (env.c's load_env) and the command's `%` part (do_command.c)."""

from __future__ import annotations

from smartcron.cron.cronstream import C_SPACE, MAX_ENVSTR, NUL, QUOTES, as_bytes, as_text

# --------------------------------------------------------------------------- environment


def load_env_buffer(buf: bytearray) -> tuple[bytes, bytes] | None:
    """env.c's state machine over its `envstr` buffer (NUL-terminated, maybe with leftovers).

    A line ending in an opening quote makes env.c copy the NUL and read on into what
    the previous, longer lines left in the buffer; that is reproduced, not fixed.
    """

    def at(i: int) -> int:
        return buf[i] if i < len(buf) else NUL

    name, value = bytearray(), bytearray()
    out, state, quote, i = name, "NAMEI", 0, 0
    while state != "ERROR" and at(i) != NUL:
        if state in ("NAMEI", "VALUEI"):
            if at(i) in QUOTES:
                quote = at(i)
                i += 1
            state = "NAME" if state == "NAMEI" else "VALUE"
        if state in ("NAME", "VALUE"):
            c = at(i)
            if quote:
                if c == quote:
                    state, i = ("EQ1" if state == "NAME" else "FINI"), i + 1
                    continue
                if state == "NAME" and c == ord("="):
                    state = "ERROR"
                    continue
            elif state == "NAME":
                if c in C_SPACE:
                    state, i = "EQ1", i + 1
                    continue
                if c == ord("="):
                    state = "EQ1"
                    continue
            out.append(c)
            i += 1
        elif state == "EQ1":
            if at(i) == ord("="):
                state, out, quote = "EQ2", value, 0
            elif at(i) not in C_SPACE:
                state = "ERROR"
            i += 1
        elif at(i) in C_SPACE:  # EQ2, FINI
            i += 1
        else:
            state = "VALUEI" if state == "EQ2" else "ERROR"
    if state != "FINI" and not (state == "VALUE" and not quote):
        return None
    key = bytes(name).split(b"\0", 1)[0]
    # The unquoted-value trim and strdtb() both strip trailing isspace(), even inside
    # quotes ("a  " gives a); then one pair of matching quotes still around it goes.
    val = bytes(value).split(b"\0", 1)[0].rstrip(C_SPACE)
    if len(val) >= 2 and val[0] in QUOTES and val[-1] == val[0]:
        val = val[1:-1]
    if len(key) + 1 + len(val) >= MAX_ENVSTR - 1:
        return None
    return key, val


def parse_env_line(line: str, *, leftovers: bytes = b"") -> tuple[str, str] | None:
    """env.c's load_env on one line (leading blanks already skipped).

    Returns (name, value) when cron would take the line as an assignment, else None.
    Quirks kept: `FOO=` is not an assignment; `FOO="a" # c` is not one either (only
    blanks may follow a closing quote); trailing blanks go even from inside quotes
    (`"a  "` gives `a`); a value still wrapped in the same quote loses that pair too
    (`'"a"'` gives `a`); only the first 998 bytes of the line are read. `leftovers`
    is what follows the line's NUL in cron's buffer (see load_env_buffer).
    """
    data = as_bytes(line).split(b"\0", 1)[0][: MAX_ENVSTR - 2]
    buf = bytearray(MAX_ENVSTR)
    buf[: len(data) + 1 + len(leftovers)] = data + b"\0" + leftovers
    buf[MAX_ENVSTR - 1 :] = b"\0"
    found = load_env_buffer(buf[:MAX_ENVSTR])
    return None if found is None else (as_text(found[0]), as_text(found[1]))


# --------------------------------------------------------------------------- commands


def split_command(command: str) -> tuple[str, str | None]:
    """do_command.c: the first unescaped `%` ends the command; the rest is stdin.

    In the command, `\\%` becomes `%` and `\\\\` becomes `\\`. In the input, each further
    `%` becomes a newline, `\\%` a literal `%`, and a newline is added at the end
    unless the input already ends with one. Returns (command, stdin or None).
    """
    out: list[str] = []
    escaped = False
    rest: str | None = None
    for index, ch in enumerate(command):
        if escaped:
            if ch in "%\\":
                out[-1] = ch
            else:
                out.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            out.append(ch)
            continue
        if ch == "%":
            rest = command[index + 1 :]
            break
        out.append(ch)
    if rest is None:
        return "".join(out), None
    data: list[str] = []
    escaped = False
    need_newline = False
    for ch in rest:
        if escaped:
            if ch != "%":
                data.append("\\")
        elif ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            data.append(ch)
            need_newline = ch != "\n"
    if escaped:
        data.append("\\")
    if need_newline:
        data.append("\n")
    return "".join(out), "".join(data)

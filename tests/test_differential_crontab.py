"""Our parser against Debian's real `crontab -n` (cron 3.0pl1-162), line by line.

A few hundred crontabs are generated with a fixed seed: lines from a small grammar of
cron fields, mutations of valid lines (characters inserted or deleted, fields swapped,
odd names, huge numbers, `,` `-` `/` in odd places, NUL and 0xFF bytes), environment-like
lines with quotes and blanks, a valid line or two before them (env.c's leftovers in its
line buffer depend on them), plus the golden inputs and the real-world corpus. Every
file ends with a newline: the one intended difference is that SmartCron reads a last
line without one (with a warning) where Debian refuses the file; see the last test.

Our verdict must be Debian's; when both refuse, the reason must be the same and the
line Debian prints must be ours or ours - 1 (crontab.c prints LineNumber - 1, and
LineNumber has only moved on if the newline was read before the error was seen).
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # compat/ is a top-level directory, not an installed package
    sys.path.insert(0, str(ROOT))

from compat.debian import (  # noqa: E402
    DebianUnavailable,
    DebianVerdict,
    check_crontabs,
    fetch_crontab,
    namespace_problem,
)
from smartcron.cron.crontab import Kind, parse  # noqa: E402
from smartcron.errors import CrontabSyntaxError  # noqa: E402

pytestmark = pytest.mark.debian

SEED = 20240613
GOLDEN = ROOT / "tests" / "golden"
CORPUS = ROOT / "fixtures" / "corpus"

VALID_LINES = [
    b"0 * * * * echo hourly",
    b"*/5 1-5 * * mon-fri /usr/bin/true",
    b"@daily run-parts /etc/cron.daily",
    b"MAILTO=root",
    b'PATH="/usr/bin:/bin"',
    b"# a comment",
    b"",
    b"15 3 1,15 * * echo 'a b' \"c d\"",
    b"SHELL = /bin/bash",
    b"30 2 * jan-jun 0,7 tar czf /tmp/x.tgz /etc > /dev/null 2>&1",
    b"* * * * * echo 'a b'",
    b'LONGER_NAME_HERE="some quoted value" ',
    b"0 0 * * * printf '%s' \"x\"   ",
]

# --------------------------------------------------------------------------- generator


def _number(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:
        return str(rng.randint(0, 32))
    if kind < 0.7:
        return str(rng.randint(0, 70))
    if kind < 0.8:
        return "0" * rng.randint(1, 3) + str(rng.randint(0, 9))
    if kind < 0.9:
        return rng.choice(["4294967296", "4294967301", "2147483647", "2147483648", "-1"])
    return str(rng.randint(10**9, 10**25))


def _name(rng: random.Random, months: bool) -> str:
    names = ["jan", "feb", "mar", "jun", "dec"] if months else ["sun", "mon", "fri", "sat"]
    odd = ["monday", "janu", "sunday", "xyz", "Tues", "ja", "m0n", "7sun", "SEPT"]
    word = rng.choice(names) if rng.random() < 0.75 else rng.choice(odd)
    return "".join(c.upper() if rng.random() < 0.3 else c for c in word)


def _atom(rng: random.Random, field: int) -> str:
    roll = rng.random()
    if roll < 0.25:
        base = "*"
    elif roll < 0.4 and field >= 3:
        base = _name(rng, months=field == 3)
    else:
        base = _number(rng)
    if base != "*" and rng.random() < 0.35:
        other = _name(rng, field == 3) if field >= 3 and rng.random() < 0.5 else _number(rng)
        base = f"{base}-{other}"
    if rng.random() < 0.3:
        base += "/" + rng.choice(["0", "1", "2", "5", "7", "15", "60", "", "x", "2147483647"])
    return base


def _field(rng: random.Random, field: int) -> str:
    atoms = [_atom(rng, field) for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 4))]
    return ",".join(atoms)


def _entry(rng: random.Random) -> bytes:
    if rng.random() < 0.12:
        word = rng.choice(
            ["reboot", "yearly", "annually", "monthly", "weekly", "daily", "midnight",
             "hourly", "DAILY", "bogus", "", "daily2", "hour"]
        )  # fmt: skip
        times = "@" + word
    else:
        times = rng.choice([" ", "  ", "\t", " \t "]).join(_field(rng, i) for i in range(5))
    command = rng.choice(
        ["echo hi", "", "*.sh", "date +\\%s", "cat %in%put", "  spaced", "a" * 50, "é" * 3]
    )
    return (times + rng.choice([" ", "\t", "  "]) + command).encode()


_INSERTS = b"*,-/ \t0123456789aZmonJ;#@\"'=%\\\r\x00\xff\xc3"


def _mutate(rng: random.Random, line: bytes) -> bytes:
    data = bytearray(line)
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        pos = rng.randint(0, len(data))
        if roll < 0.45:
            data[pos:pos] = bytes([rng.choice(_INSERTS)])
        elif roll < 0.75 and data:
            del data[min(pos, len(data) - 1)]
        elif roll < 0.9:
            parts = bytes(data).split(b" ")
            if len(parts) > 2:
                i, j = rng.sample(range(min(len(parts), 6)), 2)
                parts[i], parts[j] = parts[j], parts[i]
            data = bytearray(b" ".join(parts))
        else:
            data = data[: rng.randint(0, len(data))]
    return bytes(data)


def _env(rng: random.Random) -> bytes:
    name = rng.choice(["FOO", "MAILTO", "A", "CRON_TZ", "x1", "'Q N'", '"DQ"', "5", "*"])
    quote = rng.choice(["", "", '"', "'"])
    value = rng.choice(["bar", "a b", "", "  padded  ", "x=y", "it's", '"in"', "root"])
    close = quote if rng.random() < 0.85 else rng.choice(["", "'", '"'])
    tail = rng.choice(["", "", " ", "\t ", " # c", " x", "\r"])
    left, right = rng.choice(["", " ", "\t"]), rng.choice(["", " ", "  "])
    return f"{name}{left}={right}{quote}{value}{close}{tail}".encode()


def _open_quote(rng: random.Random) -> bytes:
    """A line ending in an opening quote: env.c then reads on into its buffer's leftovers."""
    quote = rng.choice(["'", '"'])
    name = rng.choice(["", "A", "VARIABLE_NAME_XX", "LONGER_NAME_HERE_", "x y"])
    return rng.choice([quote, f"{name}={quote}", f"{name} = {quote}", f"{quote}{name}"]).encode()


def _command_edge(rng: random.Random) -> bytes:
    """Commands at cron's limits: 998/999 bytes (MAX_COMMAND), multibyte, '*', empty."""
    times = rng.choice([b"* * * * * ", b"@daily ", b"0 0 * * *\t"])
    size = rng.choice([997, 998, 999, 1000, 1500])
    body = rng.choice([b"a" * size, "é".encode() * (size // 2) + b"a" * (size % 2)])
    command = rng.choice([body, b"*" + body[:20], b"* * * * * x", b"", b"\t*x", b"x\x00*"])
    return times + command


def generated_cases() -> list[bytes]:
    """The generated crontabs, the same on every run (fixed seed)."""
    rng = random.Random(SEED)
    cases = []
    for index in range(600):
        roll = index % 6
        if roll == 0:
            line = _entry(rng)
        elif roll == 1:
            line = _mutate(rng, rng.choice([_entry(rng), *VALID_LINES]))
        elif roll == 2:
            line = _env(rng) if rng.random() < 0.7 else _mutate(rng, _env(rng))
        elif roll == 3:
            line = _mutate(rng, _entry(rng))
        elif roll == 4:
            line = _open_quote(rng)
        else:
            line = _command_edge(rng)
        before = [rng.choice(VALID_LINES) for _ in range(rng.randint(0, 2))]
        after = [rng.choice(VALID_LINES)] if rng.random() < 0.3 else []
        cases.append(b"\n".join([*before, line, *after]) + b"\n")
    return cases


def fixed_cases() -> list[bytes]:
    """Golden inputs (user format) and the corpus, which Debian must judge as we do."""
    paths = sorted(GOLDEN.glob("*.crontab")) + sorted(p for p in CORPUS.rglob("*") if p.is_file())
    texts = [p.read_bytes() for p in paths if p.name != "README.md"]
    return [t for t in texts if t.endswith(b"\n")]


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Ours:
    accepted: bool
    line: int | None = None
    reason: str | None = None


def ours(text: bytes) -> Ours:
    try:
        parse(text.decode("utf-8", "surrogateescape"), Kind.USER, "case", install=True)
    except CrontabSyntaxError as err:
        first = err.problems[0]
        return Ours(False, first.line, first.reason.split(" (")[0])
    return Ours(True)


def disagreement(text: bytes, debian: DebianVerdict) -> str | None:
    mine = ours(text)
    if mine.accepted != debian.accepted:
        return f"Debian {'accepts' if debian.accepted else 'refuses'} ({debian.reason}), we do not"
    if mine.accepted:
        return None
    if debian.line is None:  # a whole-file message ("crontab is too long")
        return None if "too long" in (debian.reason or "") and "longer" in mine.reason else "msg"
    if mine.reason != debian.reason or debian.line not in (mine.line - 1, mine.line):
        return f"Debian: {debian.line}: {debian.reason}; we: {mine.line}: {mine.reason}"
    return None


@pytest.fixture(scope="module")
def debian_crontab() -> Path:
    problem = namespace_problem()
    if problem:
        pytest.skip(f"cannot run Debian's crontab safely: {problem}")
    try:
        return fetch_crontab()
    except DebianUnavailable as err:
        pytest.skip(f"Debian's cron package is unavailable: {err}")


def _report(cases: list[bytes], verdicts: list[DebianVerdict]) -> list[str]:
    problems = []
    for text, verdict in zip(cases, verdicts, strict=True):
        why = disagreement(text, verdict)
        if why:
            problems.append(f"{text!r}: {why}")
    return problems


def test_generation_is_deterministic_and_covers_both_verdicts():
    cases = generated_cases()
    assert cases == generated_cases()
    assert len(cases) >= 300
    verdicts = [ours(c).accepted for c in cases]
    assert 0.2 < sum(verdicts) / len(verdicts) < 0.8


def test_every_generated_crontab_gets_debians_verdict_and_reason(debian_crontab: Path):
    cases = generated_cases()
    problems = _report(cases, check_crontabs(cases, debian_crontab))
    assert not problems, f"{len(problems)} of {len(cases)} disagree:\n" + "\n".join(problems)


def test_golden_inputs_and_corpus_get_debians_verdict(debian_crontab: Path):
    cases = fixed_cases()
    assert len(cases) > 20
    problems = _report(cases, check_crontabs(cases, debian_crontab))
    assert not problems, "\n".join(problems)


def test_every_user_case_of_the_table_gets_debians_verdict(debian_crontab: Path):
    from tests.crontab_cases import CASES

    cases = [
        (c.text + "\n").encode("utf-8", "surrogateescape")
        for c in CASES.values()
        if c.kind is Kind.USER and c.install
    ]
    problems = _report(cases, check_crontabs(cases, debian_crontab))
    assert not problems, "\n".join(problems)


def test_the_one_intended_difference_is_a_missing_final_newline(debian_crontab: Path):
    text = b"0 * * * * echo first\n0 1 * * * echo last"
    (verdict,) = check_crontabs([text], debian_crontab)
    assert not verdict.accepted
    assert "missing newline before EOF" in verdict.stderr
    tab = parse(text.decode(), Kind.USER, "case")
    assert [e.command for e in tab.entries] == ["echo first", "echo last"]
    assert "no newline at end of file" in tab.warnings[0].reason

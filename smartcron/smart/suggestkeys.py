"""The #@smart keys of a job described in words: the key rules of `smartcronctl suggest`
(smartcron.smart.suggest), one table, every key of smartcrontab(5) in its phrasings.

They run before the schedule rules, their phrases being the more specific ("kill it
after 30 minutes" is not a schedule). A rule for a key this SmartCron does not have
leaves its words unread. Defaults where a phrase says no number: "when I'm idle" is
idle=10m (smartcrontab(5)'s example), "at low/high priority" is -100/100, "retry on
failure" once.
"""

from __future__ import annotations

import re

from smartcron.smart import annotations as grammar
from smartcron.smart.suggestwords import (
    ABOVE,
    BELOW,
    COUNT,
    DUR,
    NAMECHARS,
    NUM,
    PATH,
    PCT,
    Draft,
    Rule,
    Skip,
    count,
    duration_text,
    number,
    number_text,
    rule,
    seconds,
)

IDLE_DEFAULT = "10m"  # "when I'm idle" with no length: smartcrontab(5)'s example value
LOW, HIGH = "-100", "100"  # "at low/high priority"


def _set(draft: Draft, key: str, value: str, m: re.Match[str]) -> None:
    if key not in grammar.KINDS:  # a key this SmartCron does not have: not understood
        raise Skip
    draft.key(key, value, m.group(0))


def _cased(draft: Draft, m: re.Match[str], group: int) -> str:
    """A group as the user wrote it (names and paths keep their case)."""
    return draft.original[m.start(group) : m.end(group)]


def _percent(text: str) -> str:
    return number_text(number(re.sub(r" ?(%|percent|per cent)$", "", text))) + "%"


def _duration(key: str, pattern: str) -> Rule:
    """A rule whose one group is a duration, or none for the key's phrase default."""
    default = IDLE_DEFAULT if key == "idle" else None

    def action(draft: Draft, m: re.Match[str]) -> None:
        found = next((g for g in m.groups() if g), None)
        if found is None and default is None:
            raise Skip
        _set(draft, key, duration_text(seconds(found)) if found else str(default), m)

    return rule(pattern)(action)


def _valued(key: str, pattern: str, convert: str = "number") -> Rule:
    """A rule whose first non-empty group is the value (a number, percentage or name)."""

    def action(draft: Draft, m: re.Match[str]) -> None:
        index = next(i for i, g in enumerate(m.groups(), 1) if g)
        text = m.group(index)
        if convert == "percent":
            value = _percent(text)
        elif convert == "name":
            value = _cased(draft, m, index)
        elif convert == "names":
            words = re.findall(r"[A-Za-z0-9_.-]+", _cased(draft, m, index))
            value = ",".join(w for w in words if w.lower() != "and")
        else:
            value = number_text(number(text))
        _set(draft, key, value, m)

    return rule(pattern)(action)


def _give_up(draft: Draft, m: re.Match[str]) -> None:
    _set(draft, "window", duration_text(seconds(m.group(1))), m)
    draft.key("on_deadline", "skip", m.group(0))


def _catchup_within(draft: Draft, m: re.Match[str]) -> None:
    _set(draft, "catchup_window", duration_text(seconds(m.group(1))), m)
    _set(draft, "catchup", "once", m)


def _retry(draft: Draft, m: re.Match[str]) -> None:
    _set(draft, "retry", str(count(m.group(1))), m)


def _disk(draft: Draft, m: re.Match[str]) -> None:
    # groups: percent, path (first phrasing); path, percent (second)
    _set(draft, "min_disk", _percent(m.group(1) or m.group(4)), m)
    path = next((index for index in (2, 3) if m.group(index)), None)
    if path:
        _set(draft, "disk_path", _cased(draft, m, path), m)


def _pressure(draft: Draft, m: re.Match[str]) -> None:
    kind = {"i/o": "io", "memory": "mem", "ram": "mem"}.get(m.group(1), m.group(1))
    _set(draft, f"max_{kind}_pressure", _percent(m.group(2)), m)


_MACHINE = r"(?:the |my |this )?(?:computer|machine|laptop|keyboard|desktop|pc|box)"
_SOMEONE = (
    r"(?:i'm|i am|i've been|i have been|the user is|the user has been|the user's been"
    r"|someone is|somebody is|anyone is)"
)
_NOBODY = r"(?:nobody|no one|no-one|noone)"
_PREVIOUS = r"the (?:previous|last|earlier|prior) (?:run|one|job)"
# One job name a word, never "and": a list of names then parses one way only (an
# ambiguous list backtracks exponentially on "a and a and ...").
_NAME = r"(?!and\b)[a-z0-9_.-]++"
_NAMES = rf"{_NAME}(?:(?: , and| ,| and) {_NAME})*"
_FINISHED = r"(?:ha(?:s|ve) (?:run|succeeded|finished)|succeeds?|finish(?:es|ed)?|is done|are done)"
_DONE = rf"(?:jobs?(?: {_FINISHED})?|{_FINISHED})"
_MAIL = r"(?:e-?mail|mail|notify|tell|send)"


def _any(*alternatives: str) -> str:
    return "|".join(alternatives)


def _constant(key: str, value: str, *alternatives: str) -> Rule:
    return rule(_any(*alternatives))(lambda draft, m: _set(draft, key, value, m))


KEY_RULES: list[Rule] = [
    _valued("profile", _any(
        rf"(?:with|use|using|under|in) the ({NAMECHARS}) profile", rf"profile ({NAMECHARS})"
    ), "name"),
    _valued("after", _any(
        rf"after (?:the )?({_NAMES}) {_DONE}",
        rf"(?:once|when) ({_NAMES}) (?:has |have )?(?:succeeded|finished|is done|are done)",
    ), "names"),
    _constant("fleet", "once",
        r"on (?:only )?one (?:host|machine|server|node)(?: of the fleet)?",
        r"once (?:per|for the|across the) fleet"),
    _constant("fleet", "each",
        r"on (?:every|each|all) (?:hosts?|machines?|servers?|nodes?)(?: of the fleet)?"),
    # before "catch up within": "don't catch up within 3 hours" is no catch-up and a window
    _constant("catchup", "no",
        r"(?:don't|do not|never) catch up", r"skip missed runs", r"no catch-?up"),
    rule(rf"catch up within ({DUR})")(_catchup_within),
    _constant("catchup", "once",
        r"if the (?:laptop|machine|computer) was (?:off|asleep|suspended|closed)(?: ,)?"
        r" run it once when it's (?:back|on|up|awake)",
        r"catch up once", r"run missed runs once"),
    _constant("catchup", "all",
        r"catch up on (?:every|all|each) missed (?:runs?|firings?)",
        r"run (?:every|all) missed (?:runs?|firings?)"),
    _constant("catchup", "once",
        r"catch up(?: after (?:sleep|a suspend|suspend|resume|being off|a power-?off))?",
        r"run (?:it )?once after (?:resume|boot|waking up)(?: if (?:it was )?missed)?",
        r"if missed(?: ,)? run it when the (?:laptop|machine|computer) wakes up"),
    _duration("jitter", _any(
        rf"with (?:up to )?({DUR}) (?:of )?(?:random )?jitter",
        rf"jitter (?:of )?(?:up to )?({DUR})",
        rf"spread (?:it )?(?:out )?over ({DUR})",
        rf"random(?:ly)? delay(?:ed)? (?:of |by )?up to ({DUR})",
        rf"with ({DUR}) of random delay", rf"randomi[sz]e (?:it )?by (?:up to )?({DUR})",
    )),
    rule(rf"(cpu|io|i/o|memory|mem|ram) pressure {BELOW} ({PCT})")(_pressure),
    _constant("network", "unmetered",
        r"not on (?:a )?metered (?:connection|network)",
        r"on (?:an )?unmetered (?:connection|network)",
        r"(?:only )?on wi-?fi(?: only)?", r"not on (?:mobile|cellular) data"),
    _constant("network", "online",
        r"(?:the )?(?:network|internet) is (?:up|online|available|reachable)",
        r"online", r"connected to the (?:internet|network)",
        r"there is (?:an? )?(?:internet|network)(?: connection)?"),
    rule(rf"give up after ({DUR})")(_give_up),
    _constant("on_deadline", "skip", r"give up(?: if it can't (?:run|start)(?: in time)?)?"),
    _duration("window", _any(
        rf"within (?:the next )?({DUR})", rf"(?:with )?(?:a )?deadline (?:of )?({DUR})",
        rf"(?:it )?(?:can|may|could) (?:wait|be delayed|be late|slip)(?: for)?"
        rf"(?: up to| by up to| at most| by)? ({DUR})",
        rf"(?:any ?time )?in the next ({DUR})",
    )),
    _duration("timeout", _any(
        rf"(?:kill|stop|terminate|abort|cancel) it (?:after|if it (?:runs|takes|lasts)"
        rf" (?:longer|more) than) ({DUR})",
        rf"time ?out (?:after )?({DUR})",
        rf"(?:with )?a (?:time ?limit|timeout) of ({DUR})",
        rf"(?:it )?(?:must|should) not (?:take|run) (?:longer|more) than ({DUR})",
        rf"(?:with )?an? ({DUR}) (?:timeout|time limit)",
        rf"(?:with )?(?:a )?time ?limit (?:of )?({DUR})",
    )),
    _duration("retry_delay", _any(
        rf"({DUR}) apart",
        rf"(?:waiting |wait )?({DUR}) between (?:attempts|retries|tries)",
        rf"retry every ({DUR})",
    )),
    rule(
        rf"(?:if it fails(?: ,)? )?(?:retry|try again|re-?run it)(?: it)?"
        rf"(?: up to| at most)? ({COUNT})"
    )(_retry),
    _constant("retry", "0", r"(?:don't|do not|never) (?:retry|try again)", r"no retries"),
    _constant("retry", "1", r"(?:retry|try again) (?:on failure|if it fails|on errors?)"),
    _duration("idle", _any(
        rf"(?:when|while|once|if) (?:{_SOMEONE} |the (?:machine|computer|laptop) is |it's "
        rf"|it is )?(?:been )?(?:idle|away|inactive|afk)(?: for(?: at least)? ({DUR}))?",
        rf"after ({DUR}) of (?:inactivity|idleness|idle time|no activity)",
        rf"not (?:while|when) {_SOMEONE} (?:using|at|working on) {_MACHINE}",
        rf"(?:when|while|if) {_NOBODY} is (?:using|at|working on) {_MACHINE}",
        rf"(?:when|if|once) (?:i|the user|{_NOBODY}) (?:haven't|hasn't|has not|have not|has)"
        rf" (?:touched|used) {_MACHINE}(?: or (?:the )?mouse)? (?:for|in) (?:at least )?({DUR})",
    )),
    _constant("ac", "yes",
        r"(?:(?:it's|it is|i'm|i am|the (?:laptop|machine|computer) is) )?"
        r"(?:on ac(?: power)?|on mains(?: power)?|plugged in|on the charger|charging"
        r"|connected to power)"),
    _constant("ac", "no",
        r"even on battery(?: power)?", r"on battery (?:is fine|is ok|too)", r"plugged in or not"),
    _valued("min_battery", _any(
        rf"(?:the )?battery(?: level| charge)? {ABOVE} ({PCT})",
        rf"unless (?:the )?battery(?: level| charge)? {BELOW} ({PCT})",
        rf"{ABOVE} ({PCT})(?: of)? (?:the )?battery(?: left| charge)?",
        rf"with ({PCT}) battery(?: left)?",
    ), "percent"),
    rule(_any(
        rf"(?:{ABOVE} |with |(?:the )?disk has (?:at least )?)?({PCT})(?: of (?:the )?disk"
        rf"(?: space)? is)? free(?: disk)?(?: space)?(?: on ({PATH}))?",
        rf"(?:the )?free (?:disk )?space(?: on ({PATH}))? {ABOVE} ({PCT})",
    ))(_disk),
    _valued("max_load", _any(
        rf"(?<!cpu )(?:the )?(?:system )?load(?: average)? {BELOW} ({NUM})(?! ?%| ?percent)",
        rf"unless (?:the )?(?:system )?load(?: average)? {ABOVE} ({NUM})(?! ?%| ?percent)",
    )),
    _valued("max_cpu",
        _any(rf"(?:the )?cpu(?: usage| use| load| utili[sz]ation)? {BELOW} ({PCT})",
             rf"(?:less than|under|below|at most) ({PCT}) (?:of )?(?:the )?cpu(?: usage| use)?"),
        "percent"),
    _valued("max_ram", _any(
        rf"(?:the )?(?:memory|ram)(?: usage| use| used)? {BELOW} ({PCT})",
        rf"(?:less than|under|below|at most) ({PCT}) of (?:the )?(?:memory|ram) is (?:used|in use)",
    ), "percent"),
    _constant("ai", "no",
        r"(?:without|with no|no) (?:the )?(?:ai|model|machine learning)",
        r"(?:don't|do not|never) use (?:the )?(?:ai|model|machine learning)"),
    _constant("ai", "yes", r"(?:with|using|use) (?:the )?(?:ai|model)"),
    _constant("explore", "no",
        r"(?:never|don't|do not|no) explor(?:e|ing|ation)", r"without explor(?:ing|ation)"),
    _constant("explore", "yes", r"explore", r"with exploration"),
    _valued("fail_cost", rf"(?:a |each |every )?(?:failure|failed run|fail)s? costs? ({NUM})"),
    _valued("interference_cost", _any(
        rf"(?:the )?interference costs? ({NUM})",
        rf"(?:disturbing|slowing down|bothering) me costs? ({NUM})",
    )),
    _valued("delay_cost",
        rf"(?:a |each |every )?(?:delay|waiting)s? costs? ({NUM})(?: (?:per|an|each|a) hour)?"),
    _constant("delay_cost", "0",
        r"no rush", r"(?:there's )?no hurry", r"delays? (?:doesn't|does not|don't) matter"),
    _constant("priority", LOW,
        r"(?:(?:at|with|in) )?(?:a )?low(?:er)? priority", r"as a background (?:job|task)",
        r"priority low"),
    _constant("priority", HIGH, r"(?:(?:at|with|in) )?(?:a )?high(?:er)? priority",
              r"priority high"),
    _valued("priority", r"(?:(?:at|with) )?priority (-?\d{1,9})"),
    _constant("on_deadline", "skip",
        r"skip it if it can't (?:run|start|make it) in time", r"(?:otherwise|else) skip(?: it)?",
        r"if it can't (?:run|start|make it) in time(?: ,)? skip(?: it)?",
        r"skip (?:it|the run) if the (?:window|deadline) (?:ends|passes)"),
    _constant("on_deadline", "run",
        r"(?:otherwise )?run (?:it )?anyway(?: at the (?:deadline|end(?: of the window)?))?"
        r"(?: if it can't(?: (?:run|start) in time)?)?",
        r"no matter what"),
    _constant("overlap", "skip",
        rf"(?:skip(?: it| this run)?|(?:don't|do not) run(?: it)?) if (?:{_PREVIOUS} is|it's|it is)"
        r" still (?:going|running|active|busy)",
        r"(?:skip|don't start) (?:it )?if still running", r"no overlap(?:ping)?",
        r"(?:never|don't run|do not run|not) two at once", r"one at a time",
        r"(?:never|don't|do not|must not) overlap"),
    _constant("overlap", "queue",
        rf"(?:queue|delay) (?:it )?(?:if|until) {_PREVIOUS}"
        r" (?:is still (?:going|running)|ends|finishes|is done)",
        rf"wait for {_PREVIOUS}(?: to (?:end|finish))?"),
    _constant("overlap", "allow",
        r"(?:runs )?(?:may|can) overlap", r"let (?:runs|it) overlap", r"overlapping is fine"),
    _constant("mail", "error",
        rf"(?:only )?{_MAIL}(?: me)? (?:only )?(?:on|about|if|when|for)"
        r" (?:errors?|failures?|it fails|something fails|problems)",
        rf"{_MAIL}(?: me)? (?:errors|failures) only"),
    _constant("mail", "never", rf"(?:never|don't|do not) {_MAIL} me", r"no (?:e-?)?mails?",
        r"(?:don't|do not|never) send (?:me )?(?:any )?(?:an )?e-?mails?", r"silently|quietly"),
    _constant("mail", "output", rf"{_MAIL} me (?:the |its )?output"),
    _valued("name", rf"(?:call(?:ed)?|name(?:d)?:?) (?:it )?['\"]?({NAMECHARS})['\"]?", "name"),
]  # fmt: skip

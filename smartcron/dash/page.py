"""The dashboard page: one self-contained HTML document (styles, scripts and plotly.js
inline, no web font: nothing is fetched when it is opened), rendered by Jinja2 with
autoescape on; every text from a crontab or the history is escaped, and JSON embedded
in a <script> has <, > and & as \\u escapes, so no job name or command can close it.

DOM contract (the browser tests and `smartcronctl dashboard` rely on it):
  #view-jobs, #view-timeline, #view-runs, #view-model, #view-whatif   one section a view;
      each has a .view-body that a live update replaces; tabs: button.tab[data-view]
  #timeline-chart            the plotly timeline; every trace point's customdata is
                             [job name, firing key]; hover text starts with the job name
  .firing-link[data-key][data-job]   a button per firing that waited (under the chart)
  #decision-detail           the clicked firing: job, state, `explain` trail
                             (.trail li), the deciding decision and its snapshot (pre)
  tr.job-row[data-job][data-job-id]   a job; td.actions holds, with actions only,
                             button.action-run and button.action-cancel; the reply's
                             message goes to #action-message
  tr.run-row[data-job][data-outcome][data-user][data-flag]   a run (outcome: ok,
                             failed, running); #filter-job, #filter-outcome,
                             #filter-user hide non-matching rows (client-side)
  #spark-N                   job N's duration sparkline; #calibration-chart,
                             #by-hour-chart, #whatif-chart
  #dash-data                 script[type=application/json]: data_json() of the page
  body[data-live]            "1" when it listens to `events?token=...`
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from smartcron.dash.charts import REASON_STYLE, RUN_STYLE, figures, local
from smartcron.dash.records import DashData, Row

VIEWS = (
    ("jobs", "Jobs"),
    ("timeline", "Timeline"),
    ("runs", "Runs"),
    ("model", "Model"),
    ("whatif", "What-if"),
)
WAITED_SHOWN = 100  # firings listed under the timeline (newest that waited)


@cache
def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("smartcron.dash", "templates"),
        autoescape=True,  # every {{ }} escaped, in every template
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["script_json"] = script_json
    env.filters["duration"] = duration
    env.filters["short"] = short_time
    return env


def script_json(value: Any) -> Any:
    """JSON safe inside <script>: <, >, &, U+2028/9 escaped (markupsafe.Markup, so
    autoescape leaves the escapes alone)."""
    from markupsafe import Markup

    text = json.dumps(value, separators=(",", ":"), default=str)
    for raw, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, esc)
    return Markup(text)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def short_time(text: str | None) -> str:
    """`2026-01-05 14:05` in the system zone (the daemon's, as `history` shows times)."""
    return "" if not text else local(text)[:16]


def zone_label() -> str:
    from smartcron.cron.schedule import local_zone

    zone = local_zone()
    return str(getattr(zone, "key", None) or zone)


def _waited(data: DashData) -> list[Row]:
    waited = [f for f in data.firings if f["waits"]]
    return list(reversed(waited))[:WAITED_SHOWN]


def view_html(data: DashData) -> dict[str, str]:
    """Each view's body, rendered by its macro in views.html."""
    module = environment().get_template("views.html").module
    context = {
        "d": data,
        "waited": _waited(data),
        "reasons": REASON_STYLE,
        "runs": RUN_STYLE,
        "zone": zone_label(),
    }
    return {name: str(getattr(module, name)(**context)) for name, _ in VIEWS}


def filters(data: DashData) -> Row:
    return {
        "jobs": sorted({r["job"] for r in data.runs}),
        "users": sorted({str(r["user"]) for r in data.runs}),
        "outcomes": ["ok", "failed", "running"],
    }


def _shown(firing: Row) -> Row:
    """A firing's details with its instants as the page shows them (system zone)."""
    decision = firing["decision"]
    return {
        **firing,
        "nominal_shown": short_time(firing["nominal"]),
        "deadline_shown": short_time(firing["deadline"]),
        "decided_shown": short_time(decision["at"]) if decision else "",
    }


def live_payload(data: DashData) -> Row:
    """What data_json() serialises: the views' HTML, the figures, each firing's details."""
    details = {f["key"]: _shown(f) for f in data.firings}
    return {
        "generated": short_time(data.generated),
        "views": view_html(data),
        "figures": figures(data),
        "details": details,
        "filters": filters(data),
    }


@cache
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def render_page(
    data: DashData, *, live: bool = False, actions: bool = False, token: str | None = None
) -> str:
    """The whole page: every view, plotly.js inlined once, the data for live updates."""
    payload = live_payload(data)
    embedded = {key: value for key, value in payload.items() if key != "views"}  # in the DOM
    return (
        environment()
        .get_template("page.html")
        .render(
            d=data,
            views=VIEWS,
            payload=payload,
            embedded=embedded,
            plotly=plotly_js(),
            live=live,
            actions=actions,
            token=token or "",
            reasons=REASON_STYLE,
            zone=zone_label(),
        )
    )

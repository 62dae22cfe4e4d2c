"""The dashboard's charts, as plotly figures (graph_objects), serialised to the JSON
plotly.js draws: the timeline swimlanes, the duration sparklines, the calibration
plot, the failure rate by hour, the What-if comparison. No chart is drawn by hand.

Colours: the Okabe-Ito palette (distinguishable with the common colour-vision
deficiencies); the reasons a firing waited also differ by fill pattern and are named
in the legend and on hover, so colour is never the only cue."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from smartcron.dash.records import DashData, Row

OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
    "grey": "#999999",
}
# reason kind -> (legend label, colour, plotly fill pattern)
REASON_STYLE = {
    "battery": ("battery low", OKABE_ITO["orange"], "/"),
    "ac": ("on battery (ac=yes)", OKABE_ITO["yellow"], "\\"),
    "load": ("load", OKABE_ITO["vermillion"], "x"),
    "cpu": ("CPU", OKABE_ITO["purple"], "-"),
    "ram": ("RAM", OKABE_ITO["blue"], "|"),
    "idle": ("user not idle", OKABE_ITO["sky"], "."),
    "disk": ("disk", OKABE_ITO["black"], "+"),
    "capacity": ("capacity (max_concurrent)", OKABE_ITO["grey"], "x"),
    "model": ("model: a better time ahead", OKABE_ITO["green"], "/"),
    "backoff": ("window / retry back-off", "#BBBBBB", "."),
    "other": ("other", "#666666", ""),
}
RUN_STYLE = {
    "ok": ("run", OKABE_ITO["green"], ""),
    "retry": ("retry run", OKABE_ITO["blue"], "/"),
    "failed": ("failed run", OKABE_ITO["vermillion"], "x"),
}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"  # no web font to fetch


def local(iso: str) -> str:
    """An instant as plotly.js takes it: wall time in the system zone, no offset (plotly.js
    ignores offsets, so instants recorded in several zones must be made one first)."""
    from smartcron.cron.schedule import local_zone

    return datetime.fromisoformat(iso).astimezone(local_zone()).strftime("%Y-%m-%d %H:%M:%S")


def hhmm(iso: str, day: bool = False) -> str:
    """`14:05`, or `2026-01-05 14:05` with the day, in the system zone."""
    return local(iso)[:16] if day else local(iso)[11:16]


def _ms(start: str, end: str | None, fallback: str) -> float:
    a = datetime.fromisoformat(start)
    b = datetime.fromisoformat(end or fallback)
    return max(60_000.0, (b - a).total_seconds() * 1000)


def _bars(
    name: str,
    colour: str,
    pattern: str,
    items: list[Bar],
    opacity: float = 1.0,
    width: float = 0.5,
) -> Any:
    import plotly.graph_objects as go

    return go.Bar(
        name=name,
        orientation="h",
        y=[i[0] for i in items],
        base=[i[1] for i in items],
        x=[i[2] for i in items],
        customdata=[i[3] for i in items],
        hovertext=[i[4] for i in items],
        hoverinfo="text",
        width=width,
        opacity=opacity,
        marker={"color": colour, "pattern": {"shape": pattern}, "line": {"width": 0}},
    )


Bar = tuple[str, str, float, list[str], str]  # lane, start, length (ms), customdata, hover


def _lanes(data: DashData) -> tuple[dict[str, list[Bar]], list[Row], list[Row]]:
    """The bars by kind (window, each reason, each run outcome); the firings with a
    nominal time; those with a deadline."""
    lanes: dict[str, list[Bar]] = {}
    nominal: list[Row] = []
    deadlines: list[Row] = []
    for f in data.firings:
        meta = [f["job"], f["key"]]
        if f["deadline"] and f["nominal"]:
            text = f"{f['job']}: window {hhmm(f['nominal'], True)} to {hhmm(f['deadline'])}"
            text += f" ({f['state']})"
            lanes.setdefault("window", []).append(
                (
                    f["job"],
                    local(f["nominal"]),
                    _ms(f["nominal"], f["deadline"], data.end),
                    meta,
                    text,
                )
            )
            deadlines.append(f)
        if f["nominal"]:
            nominal.append(f)
        for w in f["waits"]:
            text = f"{f['job']}: waited {hhmm(w['from'])}-{hhmm(w['to'])}: {w['reason']}"
            lanes.setdefault(w["kind"], []).append(
                (f["job"], local(w["from"]), _ms(w["from"], w["to"], data.end), meta, text)
            )
        for r in f["runs"]:
            kind = (
                "failed"
                if r["status"] not in ("ok", "running")
                else ("retry" if r["trigger"] == "retry" else "ok")
            )
            text = f"{f['job']}: {r['trigger']} run {hhmm(r['start'], True)}, {r['status']}"
            lanes.setdefault(kind, []).append(
                (f["job"], local(r["start"]), _ms(r["start"], r["end"], data.end), meta, text)
            )
    return lanes, nominal, deadlines


def timeline_figure(data: DashData) -> Any:
    """One swimlane a job: window (grey), waits by reason, runs, nominal and deadline."""
    import plotly.graph_objects as go

    lanes, nominal, deadlines = _lanes(data)
    traces = []
    if "window" in lanes:
        traces.append(
            _bars("window (nominal to deadline)", "#DDDDDD", "", lanes["window"], width=0.8)
        )
    for kind, (label, colour, pattern) in REASON_STYLE.items():
        if kind in lanes:
            traces.append(_bars(f"waited: {label}", colour, pattern, lanes[kind], width=0.5))
    for kind, (label, colour, pattern) in RUN_STYLE.items():
        if kind in lanes:
            traces.append(_bars(label, colour, pattern, lanes[kind], width=0.3))
    for name, items, field, symbol in (
        ("nominal time", nominal, "nominal", "triangle-down"),
        ("deadline", deadlines, "deadline", "line-ns-open"),
    ):
        if items:
            traces.append(
                go.Scatter(
                    name=name,
                    mode="markers",
                    y=[f["job"] for f in items],
                    x=[local(f[field]) for f in items],
                    customdata=[[f["job"], f["key"]] for f in items],
                    hoverinfo="text",
                    hovertext=[f"{f['job']}: {name} {hhmm(f[field], True)}" for f in items],
                    marker={
                        "symbol": symbol,
                        "size": 9,
                        "color": OKABE_ITO["black"],
                        "line": {"width": 2, "color": OKABE_ITO["black"]},
                    },
                )
            )
    jobs = sorted({f["job"] for f in data.firings})
    fig = go.Figure(traces)
    fig.update_layout(
        barmode="overlay",
        height=max(260, 70 + 46 * len(jobs)),
        font={"family": FONT},
        margin={"l": 10, "r": 10, "t": 30, "b": 30},
        legend={"orientation": "h", "y": -0.15},
        xaxis={"type": "date", "range": [local(data.start), local(data.end)]},
        yaxis={"categoryorder": "array", "categoryarray": list(reversed(jobs)), "automargin": True},
        hovermode="closest",
        clickmode="event",
    )
    return fig


def sparkline_figure(stats: Row) -> Any:
    import plotly.graph_objects as go

    points = stats.get("durations") or []
    fig = go.Figure(
        go.Scatter(
            x=[local(p[0]) for p in points],
            y=[p[1] for p in points],
            mode="lines",
            line={"color": OKABE_ITO["blue"], "width": 1.5},
            hoverinfo="y",
            name=stats["job"],
        )
    )
    fig.update_layout(
        height=40,
        width=160,
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        xaxis={"visible": False},
        yaxis={"visible": False},
        showlegend=False,
    )
    return fig


def calibration_figure(model: Row) -> Any:
    import plotly.graph_objects as go

    rows = model["calibration"]
    fig = go.Figure(
        [
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                name="perfectly calibrated",
                line={"dash": "dash", "color": OKABE_ITO["grey"]},
            ),
            go.Scatter(
                x=[r["predicted"] for r in rows],
                y=[r["observed"] for r in rows],
                mode="lines+markers",
                name="the model",
                text=[f"{r['runs']} runs" for r in rows],
                marker={
                    "size": [min(24, 6 + r["runs"] ** 0.5) for r in rows],
                    "color": OKABE_ITO["vermillion"],
                },
            ),
        ]
    )
    fig.update_layout(
        height=320,
        font={"family": FONT},
        margin={"l": 50, "r": 10, "t": 30, "b": 50},
        xaxis={"title": "predicted failure rate", "range": [0, 1]},
        yaxis={"title": "observed failure rate", "range": [0, 1]},
    )
    return fig


def by_hour_figure(model: Row) -> Any:
    import plotly.graph_objects as go

    jobs = sorted(model["by_hour"])
    z, text = [], []
    for job in jobs:
        cells: list[float | None] = [None] * 24
        words = [""] * 24
        for h in model["by_hour"][job]:
            cells[h["hour"]] = round(h["failures"] / h["runs"], 3) if h["runs"] else None
            words[h["hour"]] = f"{h['failures']}/{h['runs']} failed"
        z.append(cells)
        text.append(words)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(24)),
            y=jobs,
            text=text,
            zmin=0,
            zmax=1,
            colorscale="Cividis",
            hovertemplate="%{y} %{x}:00: %{text}<extra></extra>",
            colorbar={"title": "failure rate"},
        )
    )
    fig.update_layout(
        height=max(200, 60 + 30 * len(jobs)),
        font={"family": FONT},
        margin={"l": 10, "r": 10, "t": 30, "b": 40},
        xaxis={"title": "hour of the day (local)", "dtick": 2},
        yaxis={"automargin": True},
    )
    return fig


WHATIF_SHOWN = (
    ("failure_rate", "failure rate"),
    ("delay_mean_s", "mean delay (s)"),
    ("on_battery_cpu_s", "CPU s on battery"),
    ("interference_cpu_s", "CPU s while in use"),
    ("wasted_cpu_s", "CPU s of failed runs"),
)
POLICY_COLOURS = (
    OKABE_ITO["grey"],
    OKABE_ITO["orange"],
    OKABE_ITO["blue"],
    OKABE_ITO["green"],
    OKABE_ITO["purple"],
)


def whatif_figure(whatif: Row) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(WHATIF_SHOWN), subplot_titles=[t for _, t in WHATIF_SHOWN])
    policies = list(whatif["policies"])
    patterns = ("", "/", ".", "x", "-")
    for col, (key, _) in enumerate(WHATIF_SHOWN, 1):
        for i, policy in enumerate(policies):
            fig.add_trace(
                go.Bar(
                    x=[policy],
                    y=[whatif["policies"][policy][key]],
                    name=policy,
                    marker={"color": POLICY_COLOURS[i % 5], "pattern": {"shape": patterns[i % 5]}},
                    showlegend=col == 1,
                    legendgroup=policy,
                ),
                row=1,
                col=col,
            )
    fig.update_layout(
        height=340, font={"family": FONT}, margin={"l": 40, "r": 10, "t": 50, "b": 40}
    )
    return fig


def figure_json(fig: Any) -> Any:
    """The figure as plotly.js takes it (data, layout), through plotly's own encoder."""
    import plotly.io as pio

    return json.loads(pio.to_json(fig, validate=False))


def figures(data: DashData) -> dict[str, Any]:
    """Every chart of the page by its element id."""
    out = {}
    if data.firings:
        out["timeline-chart"] = figure_json(timeline_figure(data))
    for index, stats in enumerate(data.stats):
        if stats.get("durations"):
            out[f"spark-{index}"] = figure_json(sparkline_figure(stats))
    if data.model["calibration"]:
        out["calibration-chart"] = figure_json(calibration_figure(data.model))
    if data.model["by_hour"]:
        out["by-hour-chart"] = figure_json(by_hour_figure(data.model))
    if data.whatif is not None:
        out["whatif-chart"] = figure_json(whatif_figure(data.whatif))
    return out

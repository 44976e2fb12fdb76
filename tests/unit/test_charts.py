"""Chart builders, checked through their Vega-Lite specs, and the waveform envelope."""

from __future__ import annotations

import json

import altair as alt
import numpy as np
import pandas as pd
import pytest

from core.audio.preview import envelope
from ui import charts

DURATION = 72.5


@pytest.fixture
def doc() -> dict:
    """A small analysis document in the ``callqa analyze --json`` shape."""
    def quality(mos: float) -> dict:
        windows = [{"start_s": s, "end_s": s + 10.0, "mos": mos, "noisiness": 3.0, "discontinuity": 2.0,
                    "coloration": 3.5, "loudness": 4.0, "speech_s": 5.0} for s in (0.0, 5.0, 10.0)]
        return {"mos": mos, "noisiness": 3.0, "discontinuity": 2.0, "coloration": 3.5, "loudness": 4.0,
                "windows": windows, "model": "nisqa-v2.0"}

    return {
        "call_id": "20261107-083314_2985954634", "layout": "channel", "duration_s": DURATION,
        "legs": {
            "agent": {"speech": [{"start_s": 9.9, "end_s": 11.3}], "silences": [{"start_s": 0.0, "end_s": 8.2}],
                      "quality": quality(3.0)},
            "caller": {"speech": [{"start_s": 1.4, "end_s": 4.6}, {"start_s": 5.7, "end_s": 9.0}],
                       "silences": [{"start_s": 0.0, "end_s": 1.4}], "quality": quality(1.6)},
        },
        "findings": [
            {"code": "packet_loss", "leg": "caller", "start_s": 2.16, "end_s": 66.8, "severity": "critical",
             "detail": "32 dropouts"},
            {"code": "poor_quality", "leg": "caller", "start_s": 0.0, "end_s": 15.0, "severity": "warning",
             "detail": "2 of 3 windows below MOS 2.5"},
            {"code": "talk_imbalance", "leg": None, "start_s": 30.0, "end_s": 30.0, "severity": "info",
             "detail": "caller 70 %"},
        ],
        "config": {"poor_quality_mos": 2.5},
    }


def _spec(chart) -> dict:
    return chart.to_dict()


def _layers(spec: dict) -> list[dict]:
    return spec["layer"] if "layer" in spec else [spec]


def _find(spec: dict, mark: str) -> dict:
    """The (first) layer drawing ``mark``."""
    for layer in _layers(spec):
        if "layer" in layer:
            try:
                return _find(layer, mark)
            except StopIteration:
                continue
        m = layer["mark"]
        if (m if isinstance(m, str) else m["type"]) == mark:
            return layer
    raise StopIteration(mark)


def _time_domain(layer: dict) -> list[float]:
    return layer["encoding"]["x"]["scale"]["domain"]


def _data(spec: dict, layer: dict) -> list[dict]:
    return spec["datasets"][layer["data"]["name"]]


# --- shaping ----------------------------------------------------------------------------------------
def test_frames_from_an_analysis(doc):
    assert charts.legs_of(doc) == ["caller", "agent"]  # display order, not dict order
    speech = charts.intervals_frame(doc, "speech")
    assert list(speech["leg"]) == ["caller", "caller", "agent"]
    windows = charts.windows_frame(doc)
    assert list(windows["mid_s"][:3]) == [5.0, 10.0, 15.0]
    findings = charts.findings_frame(doc)
    assert list(findings["finding"]) == ["Poor quality", "Packet loss", "Talk imbalance"]
    assert findings.iloc[2]["leg_label"] == "Both legs"
    scores = charts.subscores_frame(doc)
    assert scores[scores["leg"] == "caller"]["score"].iloc[0] == 1.6


# --- the aligned timelines --------------------------------------------------------------------------
def test_every_timeline_shares_the_time_axis_and_the_axis_width(doc):
    legs = charts.legs_of(doc)
    env = pd.DataFrame({"t_s": [0.0, 36.0], "lo": [-0.5, -0.1], "hi": [0.5, 0.1]})
    built = [
        charts.waveform_chart(env, leg="caller", duration_s=DURATION),
        charts.activity_chart(charts.intervals_frame(doc, "speech"), charts.intervals_frame(doc, "silences"),
                              legs=legs, duration_s=DURATION),
        charts.mos_window_chart(charts.windows_frame(doc), legs=legs, duration_s=DURATION),
        charts.findings_lane_chart(charts.findings_frame(doc), legs=legs, duration_s=DURATION),
    ]
    for chart, mark in zip(built, ("area", "bar", "line", "bar"), strict=True):
        layer = _find(_spec(chart), mark)
        assert _time_domain(layer) == [0, DURATION]
        assert layer["encoding"]["x"]["scale"]["nice"] is False
        y_axis = layer["encoding"]["y"]["axis"]
        assert y_axis["minExtent"] == y_axis["maxExtent"] == charts.AXIS_EXTENT
        assert y_axis["title"] is None  # a title sits outside the extent and would shift the plot
    # only the bottom chart (findings) labels the time axis, in seconds
    assert _find(_spec(built[-1]), "bar")["encoding"]["x"]["axis"]["title"] == "Time (s)"
    assert _find(_spec(built[0]), "area")["encoding"]["x"]["axis"]["labels"] is False


def test_waveform_is_a_band_in_the_leg_colour(doc):
    env = pd.DataFrame({"t_s": [0.0, 1.0], "lo": [-0.5, -0.2], "hi": [0.4, 0.3]})
    spec = _spec(charts.waveform_chart(env, leg="agent", duration_s=DURATION))
    area = _find(spec, "area")
    assert area["mark"]["color"] == charts.LEG_COLORS["agent"]
    assert (area["encoding"]["y"]["field"], area["encoding"]["y2"]["field"]) == ("lo", "hi")
    assert area["encoding"]["y"]["scale"]["domain"] == [-1, 1]
    assert "'Agent'" in area["encoding"]["y"]["axis"]["labelExpr"]


def test_activity_rows_and_colours(doc):
    chart = charts.activity_chart(charts.intervals_frame(doc, "speech"), charts.intervals_frame(doc, "silences"),
                                  legs=["caller", "agent"], duration_s=DURATION)
    spec = _spec(chart)
    bar = _find(spec, "bar")
    assert bar["encoding"]["y"]["scale"]["domain"] == ["Caller · speech", "Caller · silence", "Agent · speech",
                                                      "Agent · silence"]
    rows = _data(spec, bar)
    colours = {(r["row"], r["colour"]) for r in rows}
    assert ("Caller · speech", charts.LEG_COLORS["caller"]) in colours
    assert ("Agent · silence", charts.SILENCE_COLOR) in colours
    assert len(rows) == 3 + 2


def test_mos_windows_have_a_threshold_and_leg_colours(doc):
    legs = ["caller", "agent"]
    spec = _spec(charts.mos_window_chart(charts.windows_frame(doc), legs=legs, duration_s=DURATION, threshold=2.5))
    line = _find(spec, "line")
    assert line["encoding"]["y"]["scale"]["domain"] == [1, 5]
    assert line["encoding"]["color"]["scale"] == {"domain": ["Caller", "Agent"],
                                                  "range": [charts.LEG_COLORS["caller"], charts.LEG_COLORS["agent"]]}
    rule = _find(spec, "rule")
    assert _data(spec, rule) == [{"mos": 2.5}]


def test_findings_lane_uses_severity_colours_and_shows_instants(doc):
    findings = charts.findings_frame(doc)
    spec = _spec(charts.findings_lane_chart(findings, legs=["caller", "agent"], duration_s=DURATION))
    bar = _find(spec, "bar")
    assert bar["encoding"]["color"]["scale"]["range"] == [charts.SEVERITY_COLORS[s] for s in charts.SEVERITY_ORDER]
    rows = {r["finding"]: r for r in _data(spec, bar)}
    instant = rows["Talk imbalance"]
    assert instant["shown_end_s"] > instant["start_s"] == instant["end_s"]  # a zero-length finding stays visible
    # one row per finding and leg, in order of first appearance: overlapping findings never hide each other
    assert bar["encoding"]["y"]["scale"]["domain"] == ["Poor quality · caller", "Packet loss · caller",
                                                      "Talk imbalance · both legs"]
    assert bar["encoding"]["color"]["legend"] is None  # the table and badges carry the same colours


def test_highlight_marks_the_selected_finding(doc):
    chart = charts.mos_window_chart(charts.windows_frame(doc), legs=["caller"], duration_s=DURATION,
                                    highlight=(30.0, 40.0))
    spec = _spec(chart)
    rect = _find(spec, "rect")
    assert rect["mark"]["color"] == charts.HIGHLIGHT_COLOR
    assert _data(spec, rect) == [{"start_s": 30.0, "end_s": 40.0}]
    assert "rect" not in json.dumps(_spec(charts.mos_window_chart(charts.windows_frame(doc), legs=["caller"],
                                                                  duration_s=DURATION)))


def test_subscores_per_leg(doc):
    spec = _spec(charts.subscores_chart(charts.subscores_frame(doc), legs=["caller", "agent"]))
    assert spec["encoding"]["y"]["sort"] == ["MOS", "Noisiness", "Discontinuity", "Coloration", "Loudness"]
    assert spec["encoding"]["x"]["scale"]["domain"] == [1, 5]
    assert spec["encoding"]["x2"] == {"datum": 1}  # bars start at the bottom of the 1-5 scale, not at 0
    assert spec["encoding"]["yOffset"]["field"] == "leg_label"


# --- fleet -------------------------------------------------------------------------------------------
def test_mos_histogram_bins_and_bands():
    hist = charts.mos_histogram([1.0, 1.1, 2.49, 2.5, 3.6, 5.0, np.nan], step=0.5)
    assert list(hist["bin_start"]) == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
    assert list(hist["calls"]) == [2, 0, 1, 1, 0, 1, 0, 1]  # NaN left out, 5.0 in the last bin
    assert hist.set_index("bin_start").loc[2.0, "band"].startswith("Poor")
    assert hist.set_index("bin_start").loc[3.5, "band"].startswith("Good")
    spec = _spec(charts.mos_distribution_chart(hist))
    assert spec["encoding"]["x"]["bin"] == "binned" and spec["encoding"]["x"]["scale"]["domain"] == [1, 5]
    assert spec["encoding"]["color"]["scale"]["range"] == [c for _, c in charts.MOS_BANDS]


def test_trend_chart_grouped_and_percent():
    trend = pd.DataFrame({"bucket": pd.to_datetime(["2026-11-07", "2026-11-08"] * 2), "agent": ["a", "a", "b", "b"],
                          "problem_rate": [0.1, 0.2, 0.3, 0.0], "calls": [3, 4, 5, 6]})
    spec = _spec(charts.trend_chart(trend, metric="problem_rate", title="Problem rate", group="agent", percent=True))
    assert spec["encoding"]["x"]["field"] == "bucket" and spec["encoding"]["x"]["type"] == "temporal"
    assert spec["encoding"]["y"]["axis"]["format"] == ".0%"
    assert spec["encoding"]["color"]["field"] == "agent"
    mos = _spec(charts.trend_chart(trend.assign(mean_mos=3.0), metric="mean_mos", title="Mean MOS"))
    assert mos["encoding"]["y"]["scale"]["domain"] == [1, 5]


def test_finding_rates_from_calls():
    calls = pd.DataFrame({"finding_codes": ["dead_air,clipping", "", None, "dead_air"],
                          "agent": ["a", "a", "b", None]})
    overall = charts.finding_rates_frame(calls).set_index("code")
    assert overall.loc["dead_air", "rate"] == 0.5 and overall.loc["one_way_audio", "rate"] == 0.0
    assert list(overall.index) == list(charts.FLEET_RATE_CODES)
    by_agent = charts.finding_rates_frame(calls, group="agent")
    rate = by_agent.set_index(["agent", "code"])["rate"]
    assert rate[("a", "clipping")] == 0.5 and rate[("(unknown)", "dead_air")] == 1.0
    spec = _spec(charts.finding_rate_chart(by_agent, group="agent"))
    assert spec["encoding"]["x"]["axis"]["format"] == ".0%"
    assert spec["encoding"]["yOffset"]["field"] == "agent"
    assert charts.finding_rates_frame(calls.iloc[0:0]).empty


def test_findings_by_code_is_stacked_by_severity():
    counts = pd.DataFrame({"code": ["dead_air", "echo", "dead_air"], "severity": ["critical", "warning", "warning"],
                           "findings": [1, 2, 3], "calls": [1, 2, 3]})
    spec = _spec(charts.findings_by_code_chart(counts))
    assert spec["encoding"]["y"]["sort"] == ["Dead air", "Echo"]  # most calls first
    assert spec["encoding"]["color"]["scale"]["domain"] == ["Critical", "Warning", "Info"]


def test_builders_accept_empty_frames():
    empty = charts.findings_frame({"findings": []})
    assert isinstance(charts.findings_lane_chart(empty, legs=["mixed"], duration_s=10.0), alt.TopLevelMixin)
    assert _spec(charts.mos_distribution_chart(charts.mos_histogram([])))


# --- the envelope -------------------------------------------------------------------------------------
def test_envelope_is_min_max_per_column_never_the_samples():
    sr = 8000
    t = np.arange(sr * 10) / sr
    samples = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    samples[sr * 5: sr * 6] = 0.0  # one silent second
    env = envelope(samples, sr, width=100)
    assert len(env) == 100 and list(env.columns) == ["t_s", "lo", "hi"]
    assert env["t_s"].iloc[0] == 0.0 and env["t_s"].iloc[-1] == pytest.approx(9.9)
    assert env["hi"].max() == pytest.approx(0.5, abs=1e-3) and env["lo"].min() == pytest.approx(-0.5, abs=1e-3)
    silent = env[(env["t_s"] >= 5.0) & (env["t_s"] < 6.0)]
    assert (silent["hi"] == 0).all() and (silent["lo"] == 0).all()
    assert len(envelope(samples[:10], sr, width=100)) == 10  # never more columns than samples
    assert envelope(np.zeros(0, np.float32), sr).empty


def test_mos_windows_apart_are_not_joined():
    frame = pd.DataFrame({"leg": ["caller", "caller", "caller", "agent"], "start_s": [0.0, 10.0, 30.0, 0.0],
                          "end_s": [10.0, 20.0, 40.0, 10.0]})
    assert charts._window_runs(frame) == ["caller-1", "caller-1", "caller-2", "agent-3"]

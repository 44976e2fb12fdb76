"""``callqa report``: figures that match the store, the dashboard's charts as real PNGs rendered
without network, Haiku's narrative through the real SDK against the local Messages API stub
(and what the request carries), and the e-mail through a real SMTP server."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from datetime import date, datetime, timedelta
from html import escape
from pathlib import Path

import pytest

from core.alerts import AlertSettings, check_alerts
from core.cli import main
from core.report import build_report, render_report, send_report
from core.store import open_store
from tests.support.alert_calls import store_call
from tests.support.anthropic_stub import AnthropicStub, text_reply
from tests.support.shared import PROJECT_ROOT, in_ci
from tests.support.smtp_server import PASSWORD, USER, smtp_server

END = date(2026, 11, 30)  # a Monday: the week is Mon 23 - Sun 29 November, the one before 16 - 22
WEEK = datetime(2026, 11, 23)
NARRATIVE = "FLOWROUTE carried most of the week's problems: 60.0 % of its calls had packet loss."


def _calls() -> list[dict]:
    """The store's calls: (day offset from WEEK, carrier, agent, campaign, mos, codes)."""
    out = []
    for i in range(10):  # FLOWROUTE this week: 6 with packet loss at MOS 1.9, 4 clean at 3.4
        bad = i < 6
        out.append({"day": i % 7, "carrier": "FLOWROUTE", "agent": "7001" if bad else "7002", "campaign": "SALES",
                    "mos": 1.9 if bad else 3.4, "codes": ("packet_loss",) if bad else ()})
    for i in range(10):  # TELNYX this week: clean at 3.6, one with one-way audio
        out.append({"day": i % 7, "carrier": "TELNYX", "agent": "7003", "campaign": "SUPPORT", "mos": 3.6,
                    "codes": ("one_way_audio",) if i == 0 else ()})
    for i in range(10):  # the week before: clean at 3.5
        out.append({"day": i % 7 - 7, "carrier": "TELNYX", "agent": "7003", "campaign": "SUPPORT", "mos": 3.5,
                    "codes": ()})
    out.append({"day": 7, "carrier": "TELNYX", "agent": "7003", "campaign": "SUPPORT", "mos": 1.0,
                "codes": ("one_way_audio",)})  # after the period: must not count
    return out


@pytest.fixture
def filled(tmp_path) -> tuple[Path, list[str], list[str]]:
    """The store, the phone numbers and the call ids in it (one alert fired during the week)."""
    db = tmp_path / "callqa.db"
    phones, ids = [], []
    with open_store(str(db)) as store:
        for n, spec in enumerate(_calls()):
            phone = f"41555{n:05d}"
            when = WEEK + timedelta(days=spec["day"], hours=9 + n % 8, minutes=n)
            ids.append(store_call(store, when, carrier=spec["carrier"], agent=spec["agent"], campaign=spec["campaign"],
                                  mos=spec["mos"], codes=spec["codes"], phone=phone))
            phones.append(phone)
        rule = {"name": "carrier packet loss", "metric": "finding_rate:packet_loss", "op": ">", "threshold": 0.2,
                "group_by": "carrier", "window_hours": 168, "min_calls": 5, "severity": "critical"}
        fired = check_alerts(store, AlertSettings.from_mapping({"rules": [rule]}), when=datetime(2026, 11, 29, 12))
        assert [e.group_key for e in fired.events] == ["FLOWROUTE"]
    return db, phones, ids


def _clean_env(monkeypatch) -> None:
    for var in list(os.environ):
        if var.startswith(("CALLQA_", "ANTHROPIC_")):
            monkeypatch.delenv(var)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_weekly_report_html_with_charts_numbers_and_a_narrative(filled, tmp_path, monkeypatch, capsys):
    db, phones, ids = filled
    _clean_env(monkeypatch)
    out_html = tmp_path / "out.html"
    with AnthropicStub() as stub:
        stub.script(text_reply(NARRATIVE, input_tokens=900, output_tokens=60))
        config = tmp_path / "callqa.toml"
        config.write_text(f'[claude]\nbase_url = "{stub.base_url}"\nmax_retries = 0\n'
                          '[alerts]\ndashboard_url = "https://callqa.example.com"\n')
        monkeypatch.setenv("ANTHROPIC_API_KEY", stub.api_key)
        code = main(["--config", str(config), "--store", str(db), "report", "--period", "week", "--end", "2026-11-30",
                     "--html", str(out_html), "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        (request,) = stub.message_requests()

    # the narrative request: Haiku, aggregates only, no phone number or call id anywhere in it
    sent = json.dumps(request.body)
    assert request.body["model"].startswith("claude-haiku")
    assert not [p for p in phones if p in sent] and not [c for c in ids if c in sent]
    assert not re.search(r"\d{7,}", sent.replace("\\u", "")), "a long digit run was sent"
    data = json.loads(request.body["messages"][0]["content"].split("<report_data>\n", 1)[1].split("\n</report_data>")[0])
    assert data["headline"]["calls"] == {"label": "Calls analysed", "this_period": 20.0, "previous_period": 10.0}
    assert data["worst_carriers"][0]["carrier"] == "FLOWROUTE" and data["worst_carriers"][0]["calls"] == 10

    doc = json.loads(captured.out[captured.out.index("{"):])
    h = doc["headlines"]
    mean = (6 * 1.9 + 4 * 3.4 + 10 * 3.6) / 20
    assert h["calls"]["current"] == 20 and h["calls"]["previous"] == 10
    assert h["mean_mos"]["current"] == pytest.approx(mean) and h["mean_mos"]["previous"] == pytest.approx(3.5)
    assert h["problem_rate"]["current"] == pytest.approx(7 / 20) and h["problem_rate"]["previous"] == 0
    assert h["problem_rate"]["verdict"] == "worse" and h["mean_mos"]["verdict"] == "worse"
    assert h["one_way_rate"]["current"] == pytest.approx(1 / 20)
    assert h["packet_loss_rate"]["current"] == pytest.approx(6 / 20)
    assert h["alerts"]["current"] == 1 and h["call_minutes"]["current"] == pytest.approx(20.0)
    assert [r["carrier"] for r in doc["worst"]["carrier"]] == ["FLOWROUTE", "TELNYX"]
    assert doc["worst"]["carrier"][0]["problem_rate"] == pytest.approx(0.6)
    assert [r["agent"] for r in doc["worst"]["agent"]] == ["7001", "7003"]  # 7002 has 4 calls (< 5)
    assert [a["group"] for a in doc["alerts"]] == ["FLOWROUTE"] and doc["narrative"] == NARRATIVE

    html = out_html.read_text()
    assert "<title>Call quality, 23 Nov – 29 Nov 2026</title>" in html and escape(NARRATIVE) in html
    row = re.search(r"Calls analysed</td>(.*?)</tr>", html).group(1)
    assert "<b>20</b>" in row and ">10<" in row and "+10 (+100 %)" in row
    row = re.search(r"Mean MOS</td>(.*?)</tr>", html).group(1)
    assert f"<b>{mean:.2f}</b>" in row and "3.50" in row and f"{mean - 3.5:+.2f}" in row
    assert re.search(r"FLOWROUTE</td><td[^>]*>10</td><td[^>]*><b>60.0 %</b>", html)
    assert "https://callqa.example.com/alerts?event=" in html and "carrier packet loss" in html
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) == 4
    for image in images:
        width, height = _png_size(base64.b64decode(image))
        assert width >= 600 and height >= 200  # drawn at twice the CSS size


def test_chart_figures_are_the_store_figures(filled):
    db, _, _ = filled
    with open_store(str(db)) as store:
        report = build_report(store, period="week", end=END)
    from core.report.render import report_charts

    charts = report_charts(report)
    assert set(charts) == {"mos-trend", "problem-trend", "mos-distribution", "findings"}
    hist = charts["mos-distribution"][1].to_dict()
    values = next(iter(hist["datasets"].values()))
    assert sum(v["calls"] for v in values) == 20  # every call of the week with a MOS, none other
    assert sum(v["calls"] for v in values if v["bin_start"] < 2.5) == 6
    trend = next(iter(charts["problem-trend"][1].to_dict()["datasets"].values()))
    assert sum(v["calls"] for v in trend) == 20 and len(trend) == 7


def test_no_narrative_without_a_key_and_a_day_report(filled):
    db, _, _ = filled
    from core.config import Settings

    with open_store(str(db)) as store:
        report = build_report(store, period="day", end=date(2026, 11, 24), settings=Settings(raw={}))
    assert report.narrative is None and report.narrative_error is None
    assert report.since == datetime(2026, 11, 23) and report.until == datetime(2026, 11, 24)
    assert report.headline("calls").current == sum(1 for c in _calls() if c["day"] == 0)


def test_charts_render_without_any_network(filled, tmp_path):
    """vl-convert must not download anything: render in a network namespace with no interface."""
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        message = "unshare -n is not available here (needs root or user namespaces)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    db, _, _ = filled
    script = ("import sys, socket\n"
              "from datetime import date\n"
              "from core.alerts import AlertSettings\n"
              "from core.report import build_report, render_report\n"
              "from core.store import open_store\n"
              "try:\n    socket.create_connection(('pypi.org', 443), timeout=3); sys.exit('network reachable')\n"
              "except OSError:\n    pass\n"
              f"store = open_store({str(db)!r})\n"
              "r = render_report(build_report(store, period='week', end=date(2026, 11, 30)), settings=AlertSettings())\n"
              "print(len(r.images), min(len(p) for p in r.images.values()))\n")
    done = subprocess.run([unshare, "-n", sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    count, smallest = map(int, done.stdout.split())
    assert count == 4 and smallest > 5000


def test_the_report_by_email_has_its_charts_inline(filled, tmp_path):
    db, _, _ = filled
    with open_store(str(db)) as store:
        report = build_report(store, period="week", end=END)
    with smtp_server(tmp_path) as smtp:
        settings = AlertSettings.from_mapping({"smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_user": USER,
                                               "smtp_password": PASSWORD, "smtp_ca_file": str(smtp.ca_file),
                                               "email_from": "callqa@example.com"})
        send_report(report, settings, ["manager@example.com"])
        (mail,) = smtp.received()
    message = mail.message
    assert mail.rcpt_tos == ["manager@example.com"] and mail.login == USER
    assert message["Subject"] == "[callqa] Call quality, 23 Nov – 29 Nov 2026"
    html_part = message.get_body(("html",))
    html = html_part.get_content()
    cids = set(re.findall(r"src='cid:([\w-]+)'", html))
    assert cids == {"mos-trend", "problem-trend", "mos-distribution", "findings"}
    parts = {p["Content-ID"].strip("<>"): p.get_content() for p in message.walk() if p.get_content_type() == "image/png"}
    assert set(parts) == cids and all(_png_size(png)[0] >= 600 for png in parts.values())
    assert "Calls analysed: 20 (previous 10, +10 (+100 %))" in message.get_body(("plain",)).get_content()
    # the same report as a file: no cid, data URIs
    rendered = render_report(report, settings=settings, inline="data", images=parts)
    assert "cid:" not in rendered.html and rendered.html.count("data:image/png;base64,") == 4


def test_report_needs_a_destination(filled, tmp_path, monkeypatch, capsys):
    _clean_env(monkeypatch)
    db, _, _ = filled
    assert main(["--store", str(db), "report", "--period", "week"]) == 2
    assert "give --html FILE, --to EMAIL or --json" in capsys.readouterr().err

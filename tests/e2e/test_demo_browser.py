"""The demo as a newcomer sees it after ``make run``: Overview and Fleet trends in a real browser,
and each planted story found in the dashboard's own tables and CSV downloads.

Runs on a real build of the demo month (``demo_data``). Screenshots go to
``test-artifacts/screenshots/demo-*.png``; with ``CALLQA_UPDATE_DOCS_IMAGES=1`` the README's two
images (``docs/img/deep-dive.png``, ``docs/img/fleet-trends.png``) are written as well.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from core.demo.month import (
    CLIPPING_AGENT,
    DAYS,
    DEAD_AIR_CAMPAIGN,
    LOSS_FROM_DAY,
    LOSSY_CARRIER,
    ONE_WAY_SERVER,
)
from tests.e2e.test_browser import assert_no_exception, screenshot, wait_for_app
from tests.support.shared import PROJECT_ROOT

DOCS_IMAGES = PROJECT_ROOT / "docs" / "img"


def table_rows(frame: Locator) -> list[list[str]]:
    """The header and the rendered rows of an ``st.dataframe`` (its accessible table)."""
    rows = frame.locator("table tr")
    expect(rows.first).to_be_attached()
    return [[c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()] for i in range(rows.count())]


def column(frame: Locator, name: str) -> list[str]:
    header, *rows = table_rows(frame)
    index = header.index(name)
    return [r[index] for r in rows if len(r) > index]


def first_row_becomes(page: Page, frame: Locator, name: str, expected: str, *, timeout_s: float = 15.0) -> str:
    """The first value of column ``name`` once it shows ``expected`` (the grid redraws after a rerun)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = column(frame, name)[0]
        except (ValueError, IndexError):  # the old table is still being replaced
            value = ""
        if value == expected or time.monotonic() > deadline:
            return value
        page.wait_for_timeout(300)


def choose(page: Page, key: str, option: str) -> None:
    """Click ``option`` of the segmented control with widget key ``key`` and wait for the rerun."""
    page.locator(f".st-key-{key} button", has_text=option).first.click()
    wait_for_app(page)


def select(page: Page, key: str, option: str) -> None:
    """Pick ``option`` in the selectbox with widget key ``key`` (type it, then Enter)."""
    box = page.locator(f".st-key-{key} input[role=combobox]")
    box.click()
    box.fill(option)
    expect(page.get_by_role("option", name=option, exact=True)).to_be_visible()
    box.press("Enter")
    wait_for_app(page)
    expect(box).to_have_value(option)


def download_csv(page: Page, key: str) -> list[dict[str, str]]:
    with page.expect_download() as info:
        page.locator(f".st-key-{key} button").click()
    return list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))


def docs_image(page: Page, name: str) -> None:
    """The README's image ``name``: the first screen at 1280x800, palette PNG (small)."""
    if os.environ.get("CALLQA_UPDATE_DOCS_IMAGES") != "1":
        return
    from PIL import Image

    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    raw = DOCS_IMAGES / f".{name}.raw.png"
    page.screenshot(path=raw)
    with Image.open(raw) as image:
        image.convert("RGB").quantize(colors=128).save(DOCS_IMAGES / f"{name}.png", optimize=True)
    raw.unlink()


@pytest.fixture
def demo_page(browser, demo_app_url: str) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    yield page
    page.close()


@pytest.fixture(scope="module")
def manifest(demo_data: Path) -> dict:
    return json.loads((demo_data / "demo" / "recordings" / "demo_manifest.json").read_text())


def test_overview_shows_today_and_every_story(demo_page: Page, demo_app_url: str, screenshots: Path) -> None:
    page = demo_page
    page.goto(demo_app_url)
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text("Overview")
    expect(page.get_by_text("Demo data", exact=False).first).to_be_visible()
    metrics = dict(zip(page.locator("[data-testid=stMetricLabel]").all_inner_texts(),
                       page.locator("[data-testid=stMetricValue]").all_inner_texts(), strict=True))
    assert int(metrics["Calls today"].replace(",", "")) > 0
    assert int(metrics["In the store"].replace(",", "")) >= 150
    choose(page, "overview-period", "Last 30 days")
    frames = page.locator("[data-testid=stDataFrame]")
    findings = set(column(frames.nth(1), "Finding"))
    assert {"Packet loss", "Clipping", "Dead air", "One-way audio"} <= findings
    worst = table_rows(frames.nth(0))
    assert any("One-way audio" in " ".join(r) for r in worst[1:]) or any("Packet loss" in " ".join(r)
                                                                         for r in worst[1:])
    assert_no_exception(page)
    screenshot(page, screenshots / "demo-01-overview.png")


def test_fleet_trends_find_each_planted_story(demo_page: Page, demo_app_url: str, screenshots: Path,
                                              manifest: dict) -> None:
    page = demo_page
    page.goto(f"{demo_app_url}/fleet")
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text("Fleet trends")
    def worst(by: str) -> Locator:
        return page.locator(f".st-key-fleet-groups_table-{by} [data-testid=stDataFrame]")

    # the clipping headset: the worst agent by problem rate (the default ranking)
    assert first_row_becomes(page, worst("agent"), "Agent", CLIPPING_AGENT) == CLIPPING_AGENT
    choose(page, "fleet-worst_by", "Carriers")
    assert first_row_becomes(page, worst("carrier"), "Carrier", LOSSY_CARRIER) == LOSSY_CARRIER
    choose(page, "fleet-worst_by", "Campaigns")
    select(page, "fleet-sort", "Dead air per call")
    assert first_row_becomes(page, worst("campaign"), "Campaign", DEAD_AIR_CAMPAIGN) == DEAD_AIR_CAMPAIGN
    choose(page, "fleet-worst_by", "Servers")
    select(page, "fleet-sort", "One-way rate")
    assert first_row_becomes(page, worst("server"), "Server", ONE_WAY_SERVER) == ONE_WAY_SERVER

    # the carrier's trend: its mean MOS falls in the second half of the month, the others' does not
    choose(page, "fleet-group", "Carrier")
    rows = download_csv(page, "fleet-dl-trend")
    split = (date.fromisoformat(manifest["reference_date"]) - timedelta(days=DAYS - 1 - LOSS_FROM_DAY)).isoformat()

    def mean_mos(carrier: str, second_half: bool) -> float:
        picked = [r for r in rows if r["carrier"] == carrier and (r["bucket"][:10] >= split) == second_half
                  and r["mean_mos"]]
        return sum(float(r["mean_mos"]) * int(r["calls_with_mos"]) for r in picked) / \
            sum(int(r["calls_with_mos"]) for r in picked)

    assert mean_mos(LOSSY_CARRIER, True) < mean_mos(LOSSY_CARRIER, False) - 0.4
    for other in {r["carrier"] for r in rows} - {LOSSY_CARRIER}:
        assert mean_mos(LOSSY_CARRIER, True) < mean_mos(other, True) - 0.4, other
    assert_no_exception(page)
    page.locator("h1").first.scroll_into_view_if_needed()
    docs_image(page, "fleet-trends")
    screenshot(page, screenshots / "demo-02-fleet-by-carrier.png")


def test_deep_dive_of_a_story_call(demo_page: Page, demo_app_url: str, screenshots: Path, manifest: dict) -> None:
    call = next(c for c in manifest["calls"] if c["layout"] == "channel"
                and set(c["stories"]) == {"carrier_packet_loss"})
    page = demo_page
    page.goto(f"{demo_app_url}/deep_dive?call={call['call_id']}")
    wait_for_app(page)
    expect(page.locator("h1").first).to_contain_text(call["call_id"])
    expect(page.locator("[data-testid=stVegaLiteChart]").first).to_be_visible()
    expect(page.get_by_text("Packet loss").first).to_be_visible()
    assert_no_exception(page)
    docs_image(page, "deep-dive")
    screenshot(page, screenshots / "demo-03-deep-dive.png")

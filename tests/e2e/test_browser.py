"""Every page in a real browser, and the analyst's path: lookup -> deep dive -> a finding row.

Screenshots go to ``test-artifacts/screenshots/``. Any Streamlit exception element fails a test.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

CALL = "20261107-083314_2985954634"  # packet loss + poor quality on the caller leg
ROW_PX = 35  # st.dataframe row (and header) height


def wait_for_app(page: Page) -> None:
    """Wait until the app is connected, the script has finished and nothing is still loading."""
    page.wait_for_selector("[data-testid=stAppViewContainer]")
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=20_000)
    page.wait_for_timeout(200)  # let a rerun triggered by the last action start
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=30_000)
    expect(page.locator("[data-testid=stSkeleton]")).to_have_count(0, timeout=20_000)


def assert_no_exception(page: Page) -> None:
    expect(page.locator("[data-testid=stException]")).to_have_count(0)


def screenshot(page: Page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to fit it."""
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]')?.scrollHeight || 1000")
    size = page.viewport_size or {"width": 1440, "height": 1000}
    page.set_viewport_size({"width": size["width"], "height": max(int(height), size["height"])})
    page.wait_for_timeout(300)
    page.screenshot(path=path)
    page.set_viewport_size(size)


def click_row(page: Page, table, row: int) -> None:
    """Select row ``row`` of a selectable ``st.dataframe`` by clicking its row-marker checkbox."""
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + ROW_PX * (row + 1) + ROW_PX / 2)
    wait_for_app(page)


def test_a_deep_link_as_the_first_visit_opens_the_call(app_url: str, browser) -> None:
    """A fresh server's very first session goes through Streamlit's legacy ``pages/`` handling;
    the deep dive's url_path matches its file name so a shared link works even then."""
    page = browser.new_page()
    page.goto(f"{app_url}/deep_dive?call={CALL}")
    wait_for_app(page)
    page.wait_for_timeout(1000)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.locator("h1").first).to_contain_text(CALL)
    assert_no_exception(page)
    page.close()


PAGES = [
    ("01-overview", "", "Overview"),
    ("02-lookup", "lookup", "Call lookup"),
    ("03-deep-dive", f"deep_dive?call={CALL}", CALL),
    ("04-fleet", "fleet", "Fleet trends"),
    ("05-chat", "chat", "Chat"),
    ("06-settings", "settings", "Settings & health"),
]


@pytest.mark.parametrize(("name", "path", "heading"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_renders(page: Page, app_url: str, screenshots: Path, name: str, path: str, heading: str):
    page.goto(f"{app_url}/{path}")
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text(heading)
    assert_no_exception(page)
    if name in ("01-overview", "03-deep-dive", "04-fleet"):
        expect(page.locator("[data-testid=stVegaLiteChart]").first).to_be_visible()
    if name == "03-deep-dive":
        expect(page.locator("[data-testid=stAudio]")).to_have_count(2)
    screenshot(page, screenshots / f"{name}.png")


def test_lookup_to_deep_dive_to_a_finding(page: Page, app_url: str, screenshots: Path):
    page.goto(f"{app_url}/lookup")
    wait_for_app(page)
    page.get_by_label("Phone, call id or lead").fill("2985954634")
    page.get_by_test_id("stBaseButton-primaryFormSubmit").click()
    wait_for_app(page)
    results = page.locator("[data-testid=stDataFrame]").first
    expect(results).to_be_visible()
    screenshot(page, screenshots / "07-lookup-results.png")

    click_row(page, results, 0)
    expect(page).to_have_url(f"{app_url}/deep_dive?call={CALL}")
    expect(page.locator("h1").first).to_have_text(CALL)
    expect(page.locator("[data-testid=stVegaLiteChart]")).to_have_count(6)
    assert_no_exception(page)

    findings = page.locator("[data-testid=stDataFrame]").first  # the findings table comes first
    click_row(page, findings, 2)  # poor quality, 30-40 s
    expect(page.get_by_text("Players cued to Poor quality on the caller leg at 0:30")).to_be_visible()
    page.wait_for_function("() => [...document.querySelectorAll('audio')].length === 2 && "
                           "[...document.querySelectorAll('audio')].every(a => Math.abs(a.currentTime - 30) < 0.5)",
                           timeout=10_000)
    assert_no_exception(page)
    screenshot(page, screenshots / "08-deep-dive-finding.png")


def test_unknown_call_and_a_shared_link(page: Page, app_url: str, screenshots: Path):
    page.goto(f"{app_url}/deep_dive?call=20991231-000000_0000000000")
    wait_for_app(page)
    expect(page.get_by_text("Call not found")).to_be_visible()
    assert_no_exception(page)
    screenshot(page, screenshots / "09-missing-call.png")
    # a relative ?call= link (as the chat writes them) opens the deep dive from any page
    page.goto(f"{app_url}/fleet?call={CALL}")
    wait_for_app(page)
    expect(page).to_have_url(f"{app_url}/deep_dive?call={CALL}")
    expect(page.locator("h1").first).to_have_text(CALL)


def test_a_new_call_is_analysed_on_the_spot(page: Page, app_url: str, new_call, screenshots: Path):
    call_id, folder = new_call
    page.goto(f"{app_url}/deep_dive?call={call_id}&folder={quote(str(folder))}")
    expect(page.get_by_text(f"Analysed {call_id} in")).to_be_visible(timeout=90_000)
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text(call_id)
    expect(page.locator("[data-testid=stVegaLiteChart]").first).to_be_visible()
    expect(page.get_by_text("Dead air").first).to_be_visible()
    assert_no_exception(page)
    screenshot(page, screenshots / "10-analysed-on-the-spot.png")


CONFERENCE = "20261107-104610_8228237954"  # two talkers in the conference bridge's mix


def test_a_mixed_call_shows_its_sides_and_an_analyst_names_the_agent(page: Page, app_url: str, screenshots: Path):
    page.goto(f"{app_url}/deep_dive?call={CONFERENCE}")
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text(CONFERENCE)
    assert_no_exception(page)
    expect(page.locator("[data-testid=stAudio]")).to_have_count(1)  # the mix plays both sides
    attribution = page.locator("[data-testid=stAlert]").filter(has_text="attributed").first
    expect(attribution).to_be_visible()
    expect(page.locator("[data-testid=stVegaLiteChart]").first).to_be_visible()
    screenshot(page, screenshots / "09-deep-dive-mixed.png")
    button = page.get_by_role("button", name="is the agent").or_(page.get_by_role("button", name="Swap")).first
    expect(button).to_be_visible()
    button.click()
    wait_for_app(page)
    expect(page.get_by_text("Marked by an analyst")).to_be_visible(timeout=60_000)
    assert_no_exception(page)
    screenshot(page, screenshots / "10-deep-dive-mixed-marked.png")

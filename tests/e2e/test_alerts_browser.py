"""An alert as the person it was sent to meets it: the Overview's badge, the Alerts page with the
alert firing, its link (``/alerts?event=N``, as the webhook carried it) and the calls it counted;
then the Report page. A real ``streamlit run`` over a SQLite store where carrier BADCO's calls
turned one-way, checked by the real service that delivered the alert to a local webhook receiver.

Screenshots go to ``test-artifacts/screenshots/alerts-*.png``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from core.alerts import AlertSettings, check_alerts
from core.store import open_store
from tests.e2e.conftest import serve_app
from tests.e2e.test_browser import assert_no_exception, click_row, screenshot, wait_for_app
from tests.support.alert_calls import store_call
from tests.support.corpus_store import FOREIGN_ENV
from tests.support.webhook_server import webhook_receiver
from ui import state

RULE = {"name": "carrier one-way audio", "metric": "one_way_rate", "op": ">", "threshold": 0.05,
        "group_by": "carrier", "window_hours": 24, "min_calls": 5, "severity": "critical"}
BAD, GOOD = 6, 8  # BADCO's calls are all one-way; GOODCO's are clean


@pytest.fixture(scope="module")
def alert_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The dashboard over a store where one alert fired; yields its URL, the alert as the webhook
    received it and the call ids of both carriers."""
    base = tmp_path_factory.mktemp("alerts-e2e")
    db, config = base / "callqa.db", base / "callqa.toml"
    config.write_text("[alerts]\n[[alerts.rules]]\n" + "".join(
        f"{key} = {value}\n" if isinstance(value, (int, float)) else f'{key} = "{value}"\n'
        for key, value in RULE.items()))
    now = datetime.now().replace(microsecond=0)
    with open_store(str(db)) as store:
        bad = [store_call(store, now - timedelta(minutes=9 * i + 3), carrier="BADCO", codes=("one_way_audio",))
               for i in range(BAD)]
        good = [store_call(store, now - timedelta(minutes=9 * i + 5), carrier="GOODCO") for i in range(GOOD)]
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV and not k.startswith("CALLQA_ALERTS_")}
    env.update(CALLQA_STORE=str(db), CALLQA_CONFIG=str(config), CALLQA_DATA=str(base / "data"))
    with serve_app(env, base / "streamlit.log") as url, webhook_receiver() as hook:
        # the check `callqa alerts check` runs, with the dashboard's address in the message links
        with open_store(str(db)) as store:
            settings = AlertSettings.from_mapping({"rules": [RULE], "dashboard_url": url, "webhook_url": hook.url})
            result = check_alerts(store, settings)
        assert [e.kind for e in result.events] == ["firing"]
        (message,) = hook.bodies()
        yield {"url": url, "message": message, "bad": bad, "good": good}


def keyed(page: Page, key: str, inner: str = "") -> Locator:
    """The element with widget key ``key`` (Streamlit's ``st-key-`` class spells a dot as ``-``)."""
    return page.locator(f".st-key-{re.sub(r'[^A-Za-z0-9_-]', '-', key)} {inner}".strip())


def call_ids(table: Locator) -> list[str]:
    """The call ids (column "Call") of a table of calls (its accessible table; every row is rendered)."""
    rows = table.locator("table tr")
    expect(rows.first).to_be_attached()
    header, *body = ([c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()] for i in range(rows.count()))
    index = header.index("Call")
    return [r[index] for r in body if len(r) > index]


def test_from_the_badge_to_the_calls_an_alert_counted(page: Page, alert_app: dict, screenshots: Path) -> None:
    url, message = alert_app["url"], alert_app["message"]
    assert message["link"] == f"{url}/alerts?event={message['event_id']}"

    page.goto(url)
    wait_for_app(page)
    badge = page.get_by_role("link", name="1 alert firing — open Alerts")
    expect(badge).to_be_visible()
    badge.click()
    wait_for_app(page)
    expect(page).to_have_url(f"{url}/alerts")
    expect(page.locator("h1").first).to_have_text("Alerts")
    expect(page.locator("[data-testid=stMetric]", has_text="Firing now")).to_contain_text("1")
    firing = keyed(page, state.ALERTS_FIRING_TABLE)
    expect(firing).to_contain_text("carrier BADCO")
    expect(firing).to_contain_text("one_way_rate = 100.0 %")
    expect(page.get_by_text("No alert is firing.")).to_have_count(0)
    assert_no_exception(page)
    screenshot(page, screenshots / "alerts-01-firing.png")

    # a row of "Firing now" opens the alert: the same address the webhook message links to
    click_row(page, firing, 0)
    expect(page).to_have_url(message["link"])
    expect(page.get_by_text("Fired: carrier one-way audio")).to_be_visible()
    calls = keyed(page, state.ALERTS_CALLS_TABLE)
    expect(calls).to_be_visible()
    assert sorted(call_ids(calls)) == sorted(alert_app["bad"])  # BADCO's calls, none of GOODCO's
    assert_no_exception(page)
    screenshot(page, screenshots / "alerts-02-event-calls.png")


def test_the_link_in_the_message_opens_the_alert(page: Page, alert_app: dict) -> None:
    """The first visit of a fresh session, straight from the link in the Slack/Teams/e-mail message."""
    page.goto(alert_app["message"]["link"])
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text("Alerts")
    expect(page.get_by_text("Fired: carrier one-way audio")).to_be_visible()
    expect(page.locator("[data-testid=stMetric]", has_text="Calls counted")).to_contain_text(str(BAD))
    assert sorted(call_ids(keyed(page, state.ALERTS_CALLS_TABLE))) \
        == sorted(alert_app["bad"])
    page.goto(f"{alert_app['url']}/alerts?event=999999")
    wait_for_app(page)
    expect(page.get_by_text("Alert 999999 is not in this store.")).to_be_visible()
    assert_no_exception(page)


def test_the_report_page_shows_the_alert(page: Page, alert_app: dict, screenshots: Path) -> None:
    page.goto(f"{alert_app['url']}/report")
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text("Report")
    keyed(page, state.REPORT_PERIOD, "button").filter(has_text="One day").first.click()
    wait_for_app(page)
    # the day up to today (not included) has no call; today's report is one day on
    tomorrow = datetime.now() + timedelta(days=1)
    keyed(page, state.REPORT_END, "[role=spinbutton][data-type=year]").click()  # year, month, day segments
    page.keyboard.type(tomorrow.strftime("%Y%m%d"), delay=50)
    page.keyboard.press("Escape")  # close the calendar: the value is sent when the field is left
    page.locator("h1").first.click()
    wait_for_app(page)
    alerts_table = page.locator("[data-testid=stHtml] table", has_text="When (UTC)")  # "Alerts that fired"
    expect(alerts_table.get_by_role("link", name="carrier one-way audio")).to_have_attribute(  # [alerts] dashboard_url
        "href", f"http://127.0.0.1:8501/alerts?event={alert_app['message']['event_id']}")
    expect(alerts_table).to_contain_text("carrier BADCO")
    assert_no_exception(page)
    screenshot(page, screenshots / "alerts-03-report.png")

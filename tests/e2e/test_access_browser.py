"""Roles in a real browser: built-in accounts sign in on ``/callqa/signin``; a viewer sees masked
numbers and no players and a crafted request for audio is refused; an analyst plays a recording
and the play is in the audit log; an admin reads it on the Audit log page.

The server is ``streamlit run server.py`` over a copy of the corpus store holding three accounts
(:data:`tests.e2e.conftest.ACCOUNTS`).
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect

from core.audit import entries
from core.store import open_store
from tests.e2e.conftest import ACCOUNT_PASSWORD
from tests.e2e.test_browser import assert_no_exception, click_row, screenshot, wait_for_app
from tests.e2e.test_demo_browser import column

CALL = "20261107-083314_2985954634"  # packet loss on the caller leg
PHONE = CALL.split("_")[1]


def sign_in(browser: Browser, url: str, user: str) -> tuple[BrowserContext, Page]:
    """A fresh browser context signed in as ``user`` through the sign-in form (as a person does)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.goto(url)
    wait_for_app(page)
    page.get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/callqa/signin\?next="))
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(ACCOUNT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text("Overview")
    expect(page.get_by_text(f"{user} ·")).to_be_visible()
    return context, page


def audio_sources(page: Page) -> list[str]:
    page.wait_for_function("() => document.querySelectorAll('audio').length === 2", timeout=15_000)
    return page.eval_on_selector_all("audio", "els => els.map(e => e.src)")


def test_a_wrong_password_is_refused_and_nothing_shows_before_signing_in(browser: Browser,
                                                                         accounts_app_url: str) -> None:
    page = browser.new_page()
    page.goto(f"{accounts_app_url}/deep_dive?call={CALL}")
    wait_for_app(page)
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    assert page.locator("h1").first.inner_text() == "callqa"  # the gate, not the call
    assert PHONE not in page.locator("[data-testid=stMain]").inner_text() and page.locator("audio").count() == 0
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong user name or password")
    page.close()


def test_viewer_sees_masked_numbers_no_players_and_crafted_audio_is_refused(
        browser: Browser, accounts_app_url: str, accounts_store: Path, screenshots: Path) -> None:
    analyst, analyst_page = sign_in(browser, accounts_app_url, "ana")
    analyst_page.goto(f"{accounts_app_url}/deep_dive?call={CALL}")
    wait_for_app(analyst_page)
    granted = audio_sources(analyst_page)[0]  # a real grant, issued to the analyst

    viewer, page = sign_in(browser, accounts_app_url, "vera")
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav).to_contain_text("Overview")
    for hidden in ("Chat", "Settings", "Audit log"):
        expect(nav).not_to_contain_text(hidden)
    worst = page.locator("[data-testid=stDataFrame]").first
    calls = column(worst, "Call")
    assert calls and all(re.fullmatch(r"\d{8}-\d{6}_•+\d{2}", c) for c in calls), calls
    assert PHONE not in page.content()
    screenshot(page, screenshots / "access-viewer-overview.png")

    click_row(page, worst, 0)
    expect(page).to_have_url(re.compile(r"/deep_dive\?call=ref-[0-9a-f]{16}$"))  # no number in the address
    expect(page.locator("h1").first).to_contain_text("••")
    expect(page.get_by_text("need the analyst role")).to_be_visible()
    assert page.locator("audio").count() == 0 and page.get_by_test_id("stAudio").count() == 0
    page.goto(f"{accounts_app_url}/deep_dive?call={CALL}")  # a link with the real id: still no players
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text(f"{CALL[:16]}••••••••{PHONE[-2:]}")
    assert page.locator("audio").count() == 0 and PHONE not in page.content()
    assert_no_exception(page)
    screenshot(page, screenshots / "access-viewer-deep-dive.png")

    # crafted requests: the analyst's grant, a forged one, the chat page
    refused = viewer.request.get(granted)
    assert refused.status == 403 and "needs the analyst role" in refused.text()
    assert viewer.request.get(granted.rsplit("/", 1)[0] + "/forged.token").status == 404
    assert analyst.request.get(granted, headers={"Range": "bytes=0-"}).status == 206  # still good for its owner
    page.goto(f"{accounts_app_url}/chat")
    wait_for_app(page)
    assert page.get_by_test_id("stChatInput").count() == 0
    with open_store(str(accounts_store)) as store:
        assert not [e for e in entries(store, action="audio.") if e["actor"] == "vera"]
    analyst.close()
    viewer.close()


def test_analyst_plays_audio_and_admin_sees_it_in_the_audit_log(
        browser: Browser, accounts_app_url: str, accounts_store: Path, screenshots: Path) -> None:
    analyst, page = sign_in(browser, accounts_app_url, "ana")
    page.goto(f"{accounts_app_url}/deep_dive?call={CALL}")
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text(CALL)  # an analyst reads the number
    sources = audio_sources(page)
    assert all("/callqa/audio/" in s for s in sources)
    page.evaluate("() => { const a = document.querySelector('audio'); a.muted = true; return a.play(); }")
    page.wait_for_function("() => document.querySelector('audio').currentTime > 0.2", timeout=15_000)
    with page.expect_download() as info:
        page.get_by_role("link", name="Download").first.click()
    assert Path(info.value.path()).read_bytes()[:4] == b"RIFF"
    with open_store(str(accounts_store)) as store:
        audited = [(e["actor"], e["role"], e["action"], e["target"]) for e in entries(store, action="audio.")]
    assert ("ana", "analyst", "audio.play", CALL) in audited and ("ana", "analyst", "audio.download", CALL) in audited
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav).to_contain_text("Chat")
    expect(nav).not_to_contain_text("Audit log")
    page.goto(f"{accounts_app_url}/audit")
    wait_for_app(page)
    expect(page.locator("h1").first).not_to_have_text("Audit log")
    analyst.close()

    admin, page = sign_in(browser, accounts_app_url, "adam")
    expect(page.get_by_test_id("stSidebarNav")).to_contain_text("Audit log")
    page.get_by_test_id("stSidebarNav").get_by_text("Audit log").click()
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text("Audit log")
    table = page.locator("[data-testid=stDataFrame]").first
    actions = list(zip(column(table, "User"), column(table, "Action"), strict=True))
    assert ("ana", "audio.play") in actions and ("ana", "audio.download") in actions and ("ana", "login") in actions
    assert ("vera", "login") in actions
    page.get_by_role("button", name="Verify the log's hash chain").click()
    wait_for_app(page)
    expect(page.get_by_text("Intact:")).to_be_visible()
    assert_no_exception(page)
    screenshot(page, screenshots / "access-admin-audit.png")

    page.get_by_role("link", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/callqa/signin$"))
    page.goto(accounts_app_url)
    wait_for_app(page)
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()  # the session is over
    admin.close()



def test_a_trusted_proxy_names_the_user(browser: Browser, proxy_app_url: str, screenshots: Path) -> None:
    nobody = browser.new_page()
    nobody.goto(proxy_app_url)
    wait_for_app(nobody)
    expect(nobody.get_by_text("The reverse proxy did not name a user")).to_be_visible()
    assert nobody.locator("[data-testid=stDataFrame]").count() == 0
    nobody.close()

    context = browser.new_context(extra_http_headers={"X-Forwarded-User": "ana"})  # as nginx would add it
    page = context.new_page()
    page.goto(f"{proxy_app_url}/deep_dive?call={CALL}")
    wait_for_app(page)
    expect(page.locator("h1").first).to_have_text(CALL)  # unmasked: ana is an analyst
    sources = audio_sources(page)
    assert context.request.get(sources[0], headers={"Range": "bytes=0-"}).status == 206
    other = browser.new_context(extra_http_headers={"X-Forwarded-User": "mallory"})
    assert other.request.get(sources[0]).status == 403  # a viewer by default_role, and not the grant's user
    screenshot(page, screenshots / "access-proxy-analyst.png")
    other.close()
    context.close()

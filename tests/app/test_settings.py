"""Settings & health: every check of `callqa doctor` shown, no secret ever rendered."""

from __future__ import annotations

import socket


def _health(at) -> dict[str, str]:
    """``{name: "state summary"}`` from the health cards of the main area."""
    out = {}
    for m in at.main.markdown:
        if "**" in m.value and " — " in m.value:
            name = m.value.split("**")[1]
            out[name] = m.value
    return out


def test_health_of_a_folder_only_setup(open_page):
    at = open_page("pages/settings.py")
    health = _health(at)
    assert "12 calls" in health["Result store"] and "check_circle" in health["Result store"]  # a pass
    assert any("chosen by CALLQA_STORE" in c.value for c in at.main.caption)
    assert "not configured" in health["ViciDial"]
    assert "not set" in health["Claude API key"]
    assert "installed" in health["Voice activity detector"]
    config = at.dataframe[0].value.set_index("Setting")["Value"]
    assert config["Store chosen by"] == "CALLQA_STORE"
    from core.doctor import TITLES

    assert set(TITLES.values()) <= set(health)  # the dashboard shows what `callqa doctor` checks


def test_secrets_are_never_shown(open_page, all_text, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret")
    monkeypatch.setenv("CALLQA_VICIDIAL_HOST", "127.0.0.1")
    monkeypatch.setenv("CALLQA_VICIDIAL_PORT", str(port))
    monkeypatch.setenv("CALLQA_VICIDIAL_USER", "callqa_ro")
    monkeypatch.setenv("CALLQA_VICIDIAL_PASSWORD", "db-very-secret")
    at = open_page("pages/settings.py")
    health = _health(at)
    assert "present" in health["Claude API key"]
    assert "unreachable" in health["ViciDial"]
    everything = all_text(at)
    assert "very-secret" not in everything
    assert "password set" in everything


def test_refresh_button_reruns(open_page):
    at = open_page("pages/settings.py")
    next(b for b in at.button if b.label == "Refresh data").click().run()
    assert not at.exception


def test_secrets_file_sections_configure_the_app(make_app, monkeypatch, corpus_store, all_text):
    monkeypatch.delenv("CALLQA_STORE")
    at = make_app()
    at.secrets["store"] = {"url": str(corpus_store)}
    at.secrets["ANTHROPIC_API_KEY"] = "sk-ant-from-secrets"
    at.run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception
    config = at.dataframe[0].value.set_index("Setting")["Value"]
    assert config["Store chosen by"] == "[store] url" and config["Secrets file sections"] == "store"
    assert "from-secrets" not in all_text(at)

"""Roles and permissions, ``[access]`` settings, identities from a trusted proxy and from API keys, passwords."""

from __future__ import annotations

import pytest

from core.access.identity import access_mode, api_key_identity, open_identity, proxy_identity, role_for
from core.access.passwords import (
    ScryptCost,
    check_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from core.access.roles import PERMISSIONS, ROLES, Identity, allows, can_mark_sides, require
from core.access.settings import AccessSettings
from core.errors import AccessDeniedError, ConfigError, ParameterError

MAPPED = AccessSettings.from_mapping({
    "proxy_header": "X-Forwarded-User", "proxy_groups_header": "X-Forwarded-Groups",
    "trusted_proxies": ["127.0.0.1", "10.0.0.0/8"],
    "users": {"alice": "admin"}, "groups": {"qa-team": "analyst", "floor": "viewer"},
})


@pytest.mark.parametrize("permission", sorted(PERMISSIONS))
def test_each_role_includes_the_one_before(permission: str) -> None:
    granted = [allows(role, permission) for role in ROLES]
    assert granted == sorted(granted)  # False... then True...: never lost by a stronger role
    assert granted[-1]  # admin has everything
    assert not allows(None, permission)


def test_the_role_table_of_the_issue() -> None:
    viewer = {p for p in PERMISSIONS if allows("viewer", p)}
    analyst = {p for p in PERMISSIONS if allows("analyst", p)} - viewer
    admin = set(PERMISSIONS) - viewer - analyst
    assert viewer == {"view_calls"}
    assert {"play_audio", "deep_dive", "use_ai", "see_personal", "analyze", "mark_sides"} <= analyst
    assert admin == {"settings", "sql_tool", "voiceprints", "manage_users", "audit"}


def test_require_refuses_with_the_role_needed() -> None:
    require("analyst", "play_audio")
    with pytest.raises(AccessDeniedError, match=r"playing recordings needs the analyst role \(you are viewer\)"):
        require(Identity("v", "viewer", "proxy"), "play_audio", action="playing recordings")
    with pytest.raises(AccessDeniedError, match="you have no role"):
        require(None, "view_calls")
    with pytest.raises(KeyError):
        allows("admin", "play_audoi")  # a typo never silently allows or denies
    assert can_mark_sides(Identity("a", "analyst", "account")) and not can_mark_sides("viewer")


def test_settings_reject_unknown_roles_modes_and_addresses() -> None:
    for values, message in (
        ({"users": {"bob": "superuser"}}, r"\[access.users\] bob='superuser' must be one of viewer, analyst, admin"),
        ({"mode": "ldap"}, "mode='ldap' must be one of auto, open, proxy, accounts"),
        ({"mode": "proxy"}, "needs proxy_header"),
        ({"trusted_proxies": ["10.0.0.300"]}, "is not an address or network"),
        ({"proxy_header": "X-User: evil"}, "is not a header name"),
        ({"api_keys": {"bad-name": "viewer"}}, "key names are letters"),
        ({"open_role": ""}, "open_role"),
        ({"sesion_hours": 2}, "unknown"),
    ):
        with pytest.raises(ConfigError, match=message):
            AccessSettings.from_mapping(values)


def test_mode_auto_picks_proxy_then_accounts_then_open() -> None:
    assert access_mode(MAPPED) == "proxy"
    assert access_mode(AccessSettings()) == "open"
    assert access_mode(AccessSettings(mode="accounts")) == "accounts"
    who = open_identity(AccessSettings(open_role="viewer"))
    assert (who.name, who.role, who.source) == ("anonymous", "viewer", "open")


def test_proxy_header_is_honoured_only_from_trusted_addresses() -> None:
    headers = {"x-forwarded-user": "bob", "X-Forwarded-Groups": "floor, qa-team"}
    for remote in ("127.0.0.1", None, "10.1.2.3", "::ffff:10.9.9.9"):
        who = proxy_identity(MAPPED, headers, remote)
        assert who is not None and (who.name, who.role, who.groups) == ("bob", "analyst", ("floor", "qa-team"))
    for remote in ("192.168.1.5", "::1", "not-an-ip"):
        assert proxy_identity(MAPPED, headers, remote) is None  # a client cannot claim a name directly
    assert proxy_identity(MAPPED, {"X-Forwarded-User": "alice"}, "127.0.0.1").role == "admin"
    assert proxy_identity(MAPPED, {"X-Forwarded-User": "carol"}, "127.0.0.1").role == "viewer"  # default_role
    assert proxy_identity(MAPPED, {}, "127.0.0.1") is None
    assert proxy_identity(MAPPED, {"X-Forwarded-User": "eve\r\nX-Admin: 1"}, "127.0.0.1") is None


def test_unmapped_users_can_be_refused() -> None:
    strict = AccessSettings.from_mapping({"default_role": "", "groups": {"qa": "analyst"}})
    assert role_for(strict, "nobody") is None and role_for(strict, "x", ("qa",)) == "analyst"


def test_api_keys_carry_their_role() -> None:
    keys = [("main", "admin", "k" * 32), ("grafana", "viewer", "g" * 32)]
    assert api_key_identity(keys, "g" * 32, remote="10.0.0.5") == Identity("api:grafana", "viewer", "api_key",
                                                                          remote="10.0.0.5")
    assert api_key_identity(keys, "k" * 32).role == "admin"
    assert api_key_identity(keys, "g" * 31) is None and api_key_identity(keys, None) is None


def test_named_api_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = AccessSettings.from_mapping({"api_keys": {"grafana": "viewer", "bot": "analyst"}})
    monkeypatch.setenv("CALLQA_API_KEY_GRAFANA", "g" * 32)
    assert settings.named_api_keys() == [("grafana", "viewer", "g" * 32)]  # bot has no key set: not usable


FAST = ScryptCost(log2_n=10, r=8, p=1)


def test_passwords_are_salted_scrypt_and_checked_in_constant_time() -> None:
    a, b = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert a != b and a.startswith("scrypt$15$8$1$")  # a fresh salt each time
    assert verify_password("correct horse battery", a) and not verify_password("correct horse batterY", a)
    assert not verify_password("correct horse battery", "plain-text") and not verify_password("x", "")
    weak = hash_password("correct horse battery", cost=FAST)
    assert verify_password("correct horse battery", weak) and needs_rehash(weak) and not needs_rehash(a)
    for bad in ("short", "x" * 1025, "tab\tinside password"):
        with pytest.raises(ParameterError, match="password"):
            check_password(bad)

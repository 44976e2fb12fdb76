"""Helpers shared by CLI subcommands."""

from __future__ import annotations

import json
from typing import Any

import click

from core.config import Settings, load_settings


def settings_from(ctx: click.Context) -> Settings:
    """The configuration selected by the global ``--config`` option."""
    obj = ctx.find_root().obj or {}
    return load_settings(obj.get("config_path"))


def store_url_from(ctx: click.Context, settings: Settings) -> str:
    """The result store selected by ``--store``, the environment or the configuration."""
    obj = ctx.find_root().obj or {}
    return settings.store_url(obj.get("store_url"))


def echo_json(value: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))

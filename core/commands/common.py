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


_fast_exit = False


def allow_fast_exit() -> None:
    """Let the console script end this process without the interpreter's teardown once the
    command has returned (``core.cli.run``): for one-shot commands whose output is all printed
    and whose resources are closed (``analyze``, ``quality``); the teardown of onnxruntime and
    numpy takes ~0.1 s, a tenth of a whole ``callqa analyze``."""
    global _fast_exit
    _fast_exit = True


def fast_exit_allowed() -> bool:
    return _fast_exit

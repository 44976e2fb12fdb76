"""The ``callqa`` command line: a thin click group over the core services.

Each area registers its subcommands from ``core/commands/<area>.py``. Errors from the core
(:class:`core.errors.CallQAError`) become one line on stderr and a non-zero exit status:
1 for failures, 2 for usage and configuration errors, 3 for partial failures of batch runs.
"""

from __future__ import annotations

import importlib
import sys

import click

from core.errors import CallQAError

COMMAND_MODULES = (
    "core.commands.analyze",
    "core.commands.quality",
    "core.commands.store",
    "core.commands.scan",
    "core.commands.vicidial",
    "core.commands.claude",
    "core.commands.serve",
    "core.commands.doctor",
    "core.commands.queue",
    "core.commands.demo",
    "core.commands.voices",
    "core.commands.alerts",
    "core.commands.access",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Path of callqa.toml (default: $CALLQA_CONFIG, then ./callqa.toml).")
@click.option("--store", "store_url", default=None,
              help="Result store: a SQLite path or a postgresql:// URL (default: $CALLQA_STORE, then data/callqa.db).")
@click.version_option(package_name="callqa")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, store_url: str | None) -> None:
    """callqa: call-quality analysis for ViciDial recordings.

    \b
    Example:
      callqa analyze ../shared/corpus/20261107-080000_9828963560-in.wav --json
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["store_url"] = store_url


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that area is not built yet
                continue
            raise
        module.register(cli)


_register_all()


def _mask_logs() -> None:
    """Phone numbers in log lines keep only their last digits (``[privacy] mask_logs``)."""
    from core.config import load_settings
    from core.privacy.mask import install_log_masking
    from core.privacy.settings import PrivacySettings

    try:
        privacy = PrivacySettings.from_settings(load_settings())
    except CallQAError:  # a bad file is reported by the command itself; mask with the defaults
        privacy = PrivacySettings()
    if privacy.mask_logs:
        install_log_masking(visible=privacy.visible_digits)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; maps core errors to one line and an exit status."""
    _mask_logs()
    try:
        rv = cli.main(args=argv, prog_name="callqa", standalone_mode=False)
    except CallQAError as exc:
        click.echo(f"callqa: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("callqa: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("callqa: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    return rv if isinstance(rv, int) else 0


def run() -> None:
    """The console script: :func:`main`, then the exit. A one-shot command that allowed it
    (:func:`core.commands.common.allow_fast_exit`) and succeeded ends with ``os._exit`` after
    the output streams and logging are flushed, skipping the interpreter's teardown."""
    import os

    from core.commands.common import fast_exit_allowed

    rc = main()
    if rc == 0 and fast_exit_allowed():
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more to deliver
                pass
        os._exit(0)
    sys.exit(rc)


if __name__ == "__main__":
    run()

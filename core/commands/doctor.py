"""``callqa doctor``: a pass/fail list of what a production install needs."""

from __future__ import annotations

import click

from core.commands.common import echo_json, settings_from, store_url_from


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help='Print {"ok": ..., "checks": [{name, status, detail}]}.')
@click.option("--secrets-file", type=click.Path(dir_okay=False), default=None,
              help="Secrets file whose mode must be 600 (default: $CALLQA_SECRETS_FILE, then /etc/callqa/secrets.env).")
@click.pass_context
def doctor_cmd(ctx: click.Context, as_json: bool, secrets_file: str | None) -> None:
    """Check this machine: sox/ffmpeg, NISQA weights, store, temp space, ViciDial, API key, secrets.

    Each line is PASS, WARN (an optional part is missing, e.g. ViciDial not configured) or
    FAIL. Exit status 0 when nothing failed, 1 otherwise. Secrets are never printed.

    \b
    Examples:
      callqa doctor
      callqa --config /etc/callqa/callqa.toml doctor --json --secrets-file /etc/callqa/secrets.env
    """
    from core.doctor import Check, DoctorReport, run_doctor
    from core.errors import CallQAError

    try:
        settings = settings_from(ctx)
        store_url = store_url_from(ctx, settings)
    except CallQAError as exc:  # the configuration itself is broken: report it like any check
        report = DoctorReport((Check("config", "fail", str(exc)),))
    else:
        source = str(settings.path) if settings.path else "no callqa.toml (defaults)"
        config = DoctorReport((Check("config", "pass", source),))
        report = DoctorReport(config.checks + run_doctor(settings, store_url=store_url,
                                                         secrets_file=secrets_file).checks)
    if as_json:
        echo_json(report.as_dict())
    else:
        for line in report.lines():
            click.echo(line)
    if not report.ok:
        raise click.exceptions.Exit(1)


def register(cli: click.Group) -> None:
    cli.add_command(doctor_cmd)

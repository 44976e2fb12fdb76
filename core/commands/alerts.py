"""``callqa alerts check|status|test`` and ``callqa report``: alerts and the managers' report.

``alerts check`` evaluates every rule over the store, stores what fired or resolved and sends
it through the ``[alerts]`` channels (``callqa scan`` and ``callqa watch`` run the same check
after storing calls); ``report`` writes or mails the period's HTML report.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path

import click

from core.commands.common import echo_json, settings_from, store_url_from


def _open_store(ctx: click.Context):
    from core.store.store import open_store

    settings = settings_from(ctx)
    return settings, open_store(store_url_from(ctx, settings))


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())


@click.group("alerts")
def alerts_group() -> None:
    """Alert rules over the result store: evaluate them, show their state, test the channels.

    \b
    Examples:
      callqa alerts check
      callqa alerts check --dry-run --json
      callqa alerts status
    """


@alerts_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the rules, every group's value and state, changes and "
                                                        "deliveries as JSON.")
@click.option("--dry-run", is_flag=True, help="Measure and show what would fire or resolve; store and send nothing.")
@click.pass_context
def check_cmd(ctx: click.Context, as_json: bool, dry_run: bool) -> None:
    """Evaluate every alert rule; send what fired or resolved since the last check.

    An alert fires once when its condition starts, is not repeated while it holds, and sends a
    "resolved" message when it ends. Messages that could not be delivered are retried with
    backoff by the next check (callqa-alerts.timer runs one every 5 minutes).

    \b
    Examples:
      callqa alerts check
      callqa alerts check --dry-run
    """
    from core.alerts import AlertSettings, check_alerts
    from core.alerts.service import summary_lines

    settings, store = _open_store(ctx)
    try:
        alert_settings = AlertSettings.from_settings(settings)
        result = check_alerts(store, alert_settings, dry_run=dry_run)
    finally:
        store.close()
    if as_json:
        echo_json(result.as_dict())
        return
    if not result.enabled:
        click.echo("alerts are turned off ([alerts] enabled = false)")
        return
    firing = result.firing
    click.echo(f"{len(result.rules)} rule(s), {len(result.transitions)} group(s) measured, {len(firing)} firing"
               + (" (dry run: nothing stored or sent)" if dry_run else ""))
    for line in summary_lines(result):
        (click.echo(line, err=True) if line.startswith("delivery:") else click.echo(line))
    if result.delivery and (result.delivery.sent or result.delivery.left):
        click.echo(f"delivered {result.delivery.sent} message(s)"
                   + (f", {result.delivery.left} left for the next check" if result.delivery.left else ""))


@alerts_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the rules, states and outbox counts as JSON.")
@click.pass_context
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """The rules, each group's last value and state, and the delivery outbox.

    \b
    Example:
      callqa alerts status --json
    """
    from core.alerts import AlertSettings
    from core.alerts.rules import format_value
    from core.alerts.state import delivery_counts, stored_states

    settings, store = _open_store(ctx)
    try:
        alert_settings = AlertSettings.from_settings(settings)
        rules = alert_settings.active_rules
        states = stored_states(store, [r.name for r in rules])
        outbox = delivery_counts(store)
    finally:
        store.close()
    doc = {
        "enabled": alert_settings.enabled,
        "channels": list(alert_settings.channels),
        "rules": [{**r.as_dict(), "states": [
            {"group": g, "state": s["state"], "value": s["value"], "calls": s["calls"], "since": s["since"],
             "evaluated_at": s["evaluated_at"]} for (name, g), s in sorted(states.items()) if name == r.name]}
            for r in rules],
        "deliveries": outbox,
    }
    if as_json:
        echo_json(doc)
        return
    click.echo(f"channels: {', '.join(alert_settings.channels) or 'none'} · outbox: {outbox['pending']} pending, "
               f"{outbox['sent']} sent, {outbox['failed']} failed")
    rows = []
    for rule, entry in zip(rules, doc["rules"], strict=True):
        shown = [s for s in entry["states"] if s["state"] == "firing"] or entry["states"][:0]
        if not shown:
            rows.append((rule.name, rule.describe(), "ok", "-", "-", "-"))
        for s in shown:
            rows.append((rule.name, rule.describe(), f"FIRING ({s['group']})", format_value(rule, s["value"]),
                         str(s["calls"]), f"{s['since']:%Y-%m-%d %H:%M}Z"))
    _table(("RULE", "CONDITION", "STATE", "VALUE", "CALLS", "SINCE"), rows)


@alerts_group.command("test")
@click.pass_context
def test_cmd(ctx: click.Context) -> None:
    """Send a test message through every configured channel (nothing is stored).

    \b
    Example:
      callqa alerts test
    """
    from core.alerts import AlertSettings
    from core.alerts.channels import send_event
    from core.alerts.state import AlertEvent
    from core.errors import DeliveryError
    from core.store.store import utcnow

    alert_settings = AlertSettings.from_settings(settings_from(ctx))
    if not alert_settings.channels:
        raise click.UsageError("no channel is configured: set [alerts] webhook_url and/or email_to")
    now = datetime.now().replace(microsecond=0)
    event = AlertEvent(id=0, rule="callqa test alert", group_by="fleet", group_key="fleet", kind="firing",
                       severity="info", metric="calls", op=">=", threshold=0.0, value=0.0, calls=0,
                       window_start=now, window_end=now, message="A test message from `callqa alerts test`: "
                       "this channel works.", created_at=utcnow())
    failed = []
    for channel in alert_settings.channels:
        try:
            send_event(alert_settings, channel, event)
            click.echo(f"{channel}: sent")
        except DeliveryError as exc:
            failed.append(f"{channel}: {exc}")
    if failed:
        raise DeliveryError("; ".join(failed))


# --- the report --------------------------------------------------------------------------------------
@click.command("report")
@click.option("--period", type=click.Choice(["day", "week"]), default="week", show_default=True,
              help="A day, or the 7 days, ending at --end.")
@click.option("--end", "end", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="End of the period (exclusive, local midnight); default: today, so the period is "
                   "yesterday or the last 7 full days.")
@click.option("--to", "to", multiple=True, help="Send the report to this address (repeatable); default [alerts] "
                                                "report_to when no --html is given.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report (charts inline as data: images) to this file.")
@click.option("--no-narrative", is_flag=True, help="Leave out the Haiku narrative even when an API key is set.")
@click.option("--json", "as_json", is_flag=True, help="Print the report's figures as JSON.")
@click.pass_context
def report_cmd(ctx: click.Context, period: str, end: datetime | None, to: tuple[str, ...], html_path: str | None,
               no_narrative: bool, as_json: bool) -> None:
    """The managers' report: the period's numbers against the previous one, worst carriers, agents and
    campaigns, charts, alerts that fired and (with an API key) a short narrative.

    \b
    Examples:
      callqa report --period week --html report.html
      callqa report --period day --to manager@example.com
    """
    from core.alerts import AlertSettings
    from core.report import build_report, render_report, send_report

    settings, store = _open_store(ctx)
    alert_settings = AlertSettings.from_settings(settings)
    recipients = tuple(to) or (() if (html_path or as_json) else alert_settings.report_to)
    if not (recipients or html_path or as_json):
        raise click.UsageError("give --html FILE, --to EMAIL or --json (or set [alerts] report_to)")
    try:
        report = build_report(store, period=period, end=end.date() if end else date.today(), settings=settings,
                              narrative=not no_narrative)
    finally:
        store.close()
    if html_path:
        rendered = render_report(report, settings=alert_settings, inline="data")
        Path(html_path).write_text(rendered.html, encoding="utf-8")
        click.echo(f"wrote {html_path} ({len(rendered.images)} charts)")
    if recipients:
        send_report(report, alert_settings, recipients)
        click.echo(f"sent the {period} report to {', '.join(recipients)}")
    if report.narrative_error:
        click.echo(f"callqa: warning: no narrative: {report.narrative_error}", err=True)
    if as_json:
        echo_json(_finite(report.as_dict()))


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def register(cli: click.Group) -> None:
    cli.add_command(alerts_group)
    cli.add_command(report_cmd)

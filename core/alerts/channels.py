"""Delivery channels: an incoming webhook (Slack, Teams or generic JSON) and e-mail over SMTP.

Each sender makes one attempt and raises :class:`~core.errors.DeliveryError` with a one-line
reason; retrying with backoff is :mod:`core.alerts.delivery`'s job. Messages never contain
the webhook URL (its path is the token) or the SMTP password.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from typing import Any

import httpx

from core.alerts.rules import format_value, group_label
from core.alerts.settings import AlertSettings
from core.alerts.state import AlertEvent, rule_of
from core.errors import DeliveryError

SEVERITY_COLORS = {"critical": "#dc2626", "warning": "#f59e0b", "info": "#64748b", "resolved": "#16a34a"}
USER_AGENT = "callqa-alerts"


def alert_url(dashboard_url: str, event_id: int) -> str:
    """The dashboard's Alerts page opened on one event (``/alerts?event=N``, its calls listed)."""
    return f"{dashboard_url.rstrip('/')}/alerts?event={event_id}"


def event_link(settings: AlertSettings, event: AlertEvent) -> str:
    """:func:`alert_url` of ``event`` on the configured dashboard."""
    return alert_url(settings.dashboard_url, event.id)


def event_title(event: AlertEvent) -> str:
    """``[FIRING critical] carrier one-way audio: carrier FLOWROUTE`` (or ``[RESOLVED] ...``)."""
    group = group_label(event.group_by, event.group_key)
    state = f"FIRING {event.severity}" if event.kind == "firing" else "RESOLVED"
    return f"[{state}] {event.rule}: {group}"


def event_facts(event: AlertEvent) -> list[tuple[str, str]]:
    """The numbers of an alert as (label, text) pairs, in the order every channel shows them."""
    rule = rule_of(event)
    return [
        ("Group", group_label(event.group_by, event.group_key)),
        ("Value", f"{event.metric} = {format_value(rule, event.value)}"),
        ("Threshold", f"{event.op} {format_value(rule, event.threshold)}"),
        ("Calls counted", str(event.calls)),
        ("Window", f"{event.window_start:%Y-%m-%d %H:%M} - {event.window_end:%Y-%m-%d %H:%M}"),
        ("Severity", event.severity),
    ]


# --- webhook bodies --------------------------------------------------------------------------------
def generic_body(event: AlertEvent, link: str) -> dict[str, Any]:
    """Every field of the event as JSON, plus ``text`` (so a Slack-style receiver shows something)."""
    return {
        "source": "callqa",
        "status": event.kind,
        "text": f"{event_title(event)}\n{event.message}\n{link}",
        "event_id": event.id,
        "rule": event.rule,
        "severity": event.severity,
        "metric": event.metric,
        "op": event.op,
        "threshold": event.threshold,
        "value": event.value,
        "calls": event.calls,
        "group_by": event.group_by,
        "group": event.group_key,
        "window_start": event.window_start.isoformat(),
        "window_end": event.window_end.isoformat(),
        "created_at": event.created_at.isoformat() + "Z",
        "message": event.message,
        "link": link,
    }


def slack_body(event: AlertEvent, link: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (notifications, fallback) and Block Kit blocks."""
    facts = [{"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in event_facts(event)]
    return {
        "text": f"{event_title(event)}: {event.message}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": event_title(event)[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": event.message[:2900]}},
            {"type": "section", "fields": facts},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open in callqa"},
                                              "url": link}]},
        ],
    }


def teams_body(event: AlertEvent, link: str) -> dict[str, Any]:
    """A Teams message carrying an Adaptive Card (what Teams workflow webhooks accept)."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": event_title(event), "weight": "Bolder", "size": "Medium", "wrap": True,
             "color": "Good" if event.kind == "resolved" else ("Attention" if event.severity == "critical" else "Warning")},
            {"type": "TextBlock", "text": event.message, "wrap": True},
            {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in event_facts(event)]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open in callqa", "url": link}],
    }
    return {"type": "message", "text": f"{event_title(event)}: {event.message}",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                             "content": card}]}


BODIES = {"generic": generic_body, "slack": slack_body, "teams": teams_body}


def post_webhook(settings: AlertSettings, body: Mapping[str, Any]) -> None:
    """POST one JSON body to ``[alerts] webhook_url``; any 2xx is success.

    Raises
    ------
    DeliveryError
        Connection refused, timeout, TLS failure or a non-2xx status (the URL's path is never shown).
    """
    where = settings.describe_webhook()
    try:
        with httpx.Client(timeout=settings.timeout_s, follow_redirects=False, trust_env=False,
                          headers={"User-Agent": USER_AGENT}) as client:
            response = client.post(settings.webhook_url, json=dict(body))
    except httpx.TimeoutException:
        raise DeliveryError(f"webhook {where}: no answer within {settings.timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"webhook {where}: {type(exc).__name__}: {_scrub(str(exc), settings)}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"webhook {where}: HTTP {response.status_code} "
                            f"{_scrub(response.text[:120], settings)}".rstrip())


def send_webhook(settings: AlertSettings, event: AlertEvent) -> None:
    """Send one alert to the webhook in ``[alerts] webhook_format``."""
    post_webhook(settings, BODIES[settings.webhook_format](event, event_link(settings, event)))


def _scrub(text: str, settings: AlertSettings) -> str:
    text = " ".join(text.split())
    for secret in (settings.webhook_url, settings.smtp_password):
        if secret:
            text = text.replace(secret, "***")
    return text


# --- e-mail ----------------------------------------------------------------------------------------
def event_email(settings: AlertSettings, event: AlertEvent) -> EmailMessage:
    """The alert as a plain-text and HTML e-mail to ``[alerts] email_to``."""
    link = event_link(settings, event)
    facts = event_facts(event)
    text = "\n".join([event.message, "", *(f"{label}: {value}" for label, value in facts), "", f"Calls: {link}", ""])
    color = SEVERITY_COLORS["resolved" if event.kind == "resolved" else event.severity]
    rows = "".join(f"<tr><td style='padding:2px 12px 2px 0;color:#475569'>{escape(label)}</td>"
                   f"<td style='padding:2px 0'><b>{escape(value)}</b></td></tr>" for label, value in facts)
    html = (f"<div style='font-family:Arial,sans-serif;font-size:14px;color:#0f172a'>"
            f"<h2 style='color:{color};font-size:18px;margin:0 0 8px'>{escape(event_title(event))}</h2>"
            f"<p>{escape(event.message)}</p><table>{rows}</table>"
            f"<p><a href='{escape(link, quote=True)}'>Open these calls in callqa</a></p></div>")
    message = new_message(settings, settings.email_to, event_title(event))
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def new_message(settings: AlertSettings, to: Sequence[str], subject: str) -> EmailMessage:
    """An empty message with the headers every callqa e-mail has."""
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = ", ".join(to)
    message["Subject"] = f"[callqa] {subject}" if not subject.startswith("[callqa]") else subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=settings.email_from.rsplit("@", 1)[-1] or None)
    return message


def send_email(settings: AlertSettings, message: EmailMessage) -> None:
    """Send ``message`` through ``[alerts] smtp_host``: STARTTLS (certificate verified) unless turned
    off, then the login when ``smtp_user`` is set.

    Raises
    ------
    DeliveryError
        The relay is unreachable, refuses STARTTLS, the login or a recipient, or times out.
    """
    if not settings.email_configured:
        raise DeliveryError("e-mail is not configured: set [alerts] smtp_host and email_from")
    where = f"SMTP {settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(f"{where} does not offer STARTTLS (set smtp_starttls = false only for a "
                                        "relay on this machine)")
                context = ssl.create_default_context(cafile=settings.smtp_ca_file or None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            refused = smtp.send_message(message)
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"{where}: login as {settings.smtp_user!r} refused ({exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise DeliveryError(f"{where}: {exc.smtp_code} {_scrub(detail, settings)[:160]}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"{where}: every recipient refused ({', '.join(exc.recipients)})") from None
    except (TimeoutError, smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        raise DeliveryError(f"{where}: {type(exc).__name__}: {_scrub(str(exc), settings)[:160]}") from None
    if refused:
        raise DeliveryError(f"{where}: refused {', '.join(sorted(refused))}")


def send_event(settings: AlertSettings, channel: str, event: AlertEvent) -> None:
    """Send one alert through one channel (``webhook`` or ``email``).

    Raises
    ------
    DeliveryError
        The attempt failed, or the channel is no longer configured.
    """
    if channel == "webhook":
        if not settings.webhook_url:
            raise DeliveryError("the webhook is no longer configured ([alerts] webhook_url)")
        send_webhook(settings, event)
    elif channel == "email":
        if not settings.email_to:
            raise DeliveryError("alert e-mail is no longer configured ([alerts] email_to)")
        send_email(settings, event_email(settings, event))
    else:
        raise DeliveryError(f"unknown alert channel {channel!r}")

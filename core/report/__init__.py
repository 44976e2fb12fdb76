"""The managers' report (``callqa report``, the dashboard's Report page, ``callqa-report.timer``).

:func:`build_report` reads the period's figures (:mod:`core.report.data`) and, when an API key
is configured, adds Haiku's narrative (:mod:`core.report.narrative`); :func:`render_report` turns
it into HTML with the dashboard's charts as inline PNG (:mod:`core.report.render`);
:func:`send_report` mails it through ``[alerts]``'s SMTP settings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from core.report.data import Report, period_bounds
from core.report.render import RenderedReport, render_report

if TYPE_CHECKING:
    from core.alerts.settings import AlertSettings
    from core.config import Settings
    from core.store.store import ResultStore

__all__ = ["RenderedReport", "Report", "build_report", "period_bounds", "render_report", "report_email",
           "send_report"]


def build_report(store: ResultStore, *, period: str = "week", end: date | None = None,
                 settings: Settings | None = None, narrative: bool = True, client=None) -> Report:
    """The period's report; with ``settings`` and ``narrative``, Haiku's paragraph when a key is set.

    Raises
    ------
    ParameterError
        An unknown period.
    StoreError
        The store cannot be read.
    """
    from core.report.data import build_report as build_figures

    report = build_figures(store, period=period, end=end)
    if narrative and settings is not None:
        from core.llm.settings import ClaudeSettings
        from core.report.narrative import add_narrative

        add_narrative(report, store=store, settings=ClaudeSettings.from_settings(settings), client=client)
    return report


def report_email(report: Report, settings: AlertSettings, to: Sequence[str]):
    """The report as a ``multipart/related`` e-mail: text, HTML and the charts as ``cid:`` images."""
    from core.alerts.channels import new_message

    rendered = render_report(report, settings=settings, inline="cid")
    message = new_message(settings, to, report.title)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    html_part = message.get_payload()[-1]
    for cid, png in rendered.images.items():
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", filename=f"{cid}.png",
                              disposition="inline")
    return message


def send_report(report: Report, settings: AlertSettings, to: Sequence[str], *, attempts: int = 3) -> None:
    """Mail the report, retrying a failed attempt with backoff (``retry_backoff_s``, doubled, at most 60 s).

    Raises
    ------
    DeliveryError
        Every attempt failed (the last reason).
    """
    from core.alerts.channels import send_email
    from core.errors import DeliveryError

    message = report_email(report, settings, to)
    for attempt in range(1, attempts + 1):
        try:
            send_email(settings, message)
            return
        except DeliveryError:
            if attempt == attempts:
                raise
            time.sleep(min(60.0, settings.retry_backoff_s * 2 ** (attempt - 1)))

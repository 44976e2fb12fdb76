"""``[privacy]``: what may be sent to Claude, and how numbers are masked elsewhere.

::

    [privacy]
    send_to_claude = []      # "phone_numbers", "names", "addresses", "emails": only with a
                             # data-processing agreement; the default sends none
    mask_logs = true         # phone numbers in log lines keep only their last digits
    visible_digits = 2       # digits of a masked number left visible (viewers, CSV, logs)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from core.config import SettingsSection
from core.errors import ConfigError
from core.privacy.redact import CATEGORIES, Policy

SECTION = "privacy"


@dataclass(frozen=True)
class PrivacySettings(SettingsSection):
    """The ``[privacy]`` section; build with :meth:`from_settings` (``CALLQA_PRIVACY_<KEY>`` wins)."""

    send_to_claude: tuple[str, ...] = ()
    mask_logs: bool = True
    visible_digits: int = 2

    SECTION: ClassVar[str] = SECTION

    def _validate(self) -> None:
        unknown = sorted(set(self.send_to_claude) - set(CATEGORIES))
        if unknown:
            raise ConfigError(f"[{SECTION}] send_to_claude: unknown categor{'ies' if len(unknown) > 1 else 'y'} "
                              f"{', '.join(unknown)} (one of {', '.join(CATEGORIES)})")
        if not 0 <= self.visible_digits <= 4:
            raise ConfigError(f"[{SECTION}] visible_digits={self.visible_digits} must be between 0 and 4")

    @property
    def policy(self) -> Policy:
        """What :class:`core.privacy.redact.Redactor` lets through to Claude."""
        return Policy.allowing(self.send_to_claude)

"""``[privacy]``: what may be sent to Claude, and how numbers are masked elsewhere.

::

    [privacy]
    send_to_claude = []      # "phone_numbers", "names", "addresses", "emails": only with a
                             # data-processing agreement; the default sends none
    mask_logs = true         # phone numbers in log lines keep only their last digits
    visible_digits = 2       # digits of a masked number left visible (viewers, CSV, logs)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.config import Settings, check_keys, coerce_setting
from core.errors import ConfigError
from core.privacy.redact import CATEGORIES, Policy

SECTION = "privacy"


@dataclass(frozen=True)
class PrivacySettings:
    """The ``[privacy]`` section; build with :meth:`from_settings`."""

    send_to_claude: tuple[str, ...] = ()
    mask_logs: bool = True
    visible_digits: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> PrivacySettings:
        """Read ``[privacy]`` and ``CALLQA_PRIVACY_<KEY>`` (lists comma-separated)."""
        values = settings.section(SECTION)
        for f in dataclasses.fields(cls):
            env = os.environ.get(f"CALLQA_PRIVACY_{f.name.upper()}")
            if env is not None and env != "":
                values[f.name] = [v.strip() for v in env.split(",") if v.strip()] if f.name == "send_to_claude" else env
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> PrivacySettings:
        """Build from a ``[privacy]`` table.

        Raises
        ------
        ConfigError
            Unknown keys or categories, wrong types.
        """
        values = dict(values or {})
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        check_keys(SECTION, values, set(defaults))
        out = cls(**{k: coerce_setting(SECTION, k, v, defaults[k]) for k, v in values.items()})
        unknown = sorted(set(out.send_to_claude) - set(CATEGORIES))
        if unknown:
            raise ConfigError(f"[{SECTION}] send_to_claude: unknown categor{'ies' if len(unknown) > 1 else 'y'} "
                              f"{', '.join(unknown)} (one of {', '.join(CATEGORIES)})")
        if not 0 <= out.visible_digits <= 4:
            raise ConfigError(f"[{SECTION}] visible_digits={out.visible_digits} must be between 0 and 4")
        return out

    @property
    def policy(self) -> Policy:
        """What :class:`core.privacy.redact.Redactor` lets through to Claude."""
        return Policy.allowing(self.send_to_claude)

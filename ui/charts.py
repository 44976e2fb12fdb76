"""The dashboard's chart builders: they live in :mod:`core.charts` (the e-mailed report renders the
same charts), and this module is their name on the Streamlit side."""

from __future__ import annotations

from core.charts import *  # noqa: F403
from core.charts import _window_runs  # noqa: F401  (tests read the run ids)

"""Streamlit glue of the dashboard, one module per concern; pages import each by its name.

- :mod:`ui.cached` -- cached resources and queries over ``core`` (settings, store, models);
- :mod:`ui.state` -- every session-state and widget key, and the deep-link parameters;
- :mod:`ui.errors` -- a ``CallQAError`` as a readable message (``call_or_stop``/``call_or_none``);
- :mod:`ui.formatting`, :mod:`ui.dates` -- text for people, date pickers and periods;
- :mod:`ui.charts`, :mod:`ui.widgets` -- chart builders; metric rows, call tables, downloads;
- :mod:`ui.health` -- ``callqa doctor``'s checks in the sidebar and on the Settings page;
- :mod:`ui.access` -- who is signed in, what their role shows (masking), server-side refusals;
- :mod:`ui.routes` -- the HTTP routes ``server.py`` serves: sign-in, sign-out, recordings;
- :mod:`ui.overview`, :mod:`ui.lookup`, :mod:`ui.deep_dive`, :mod:`ui.fleet`, :mod:`ui.chat`,
  :mod:`ui.alerts` -- the helpers of the page of the same name in ``pages/`` (``ui.alerts`` also
  serves the Report page and the Overview's alert badge).

``core`` never imports this package; no domain rule lives here (see ``docs/architecture.md``).
"""

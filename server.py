"""callqa dashboard server: the Streamlit app (``app.py``) with callqa's own HTTP routes.

Run with ``streamlit run server.py`` (``make run``, ``systemd/callqa-dashboard.service``). Besides
the app it serves the sign-in form of the built-in accounts and the recordings, each behind a
role check and written to the audit log (:mod:`ui.routes`). ``streamlit run app.py`` still runs
the app alone (open mode only: no sign-in, recordings embedded in the page).

Behind a reverse proxy set ``FORWARDED_ALLOW_IPS=`` (empty) for this process, so the server keeps
the proxy's address as the peer and ``[access] trusted_proxies`` decides whose identity headers
count (the unit and ``make run`` do).
"""

from __future__ import annotations

import streamlit as st

from ui import routes

app = st.App("app.py", routes=routes.ROUTES, lifespan=routes.lifespan)

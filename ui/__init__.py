"""Streamlit glue of the dashboard: cached resources and queries (:mod:`ui.cached`), chart builders
(:mod:`ui.charts`), reusable page pieces and error messages (:mod:`ui.components`) and the
session-state keys (:mod:`ui.state`). ``core`` never imports this package.
"""

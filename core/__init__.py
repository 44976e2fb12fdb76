"""callqa core: the analysis pipeline, the result store and the adapters (no UI code)."""

__version__ = "0.1.0"

"""Claude features: executive summaries, bulk batches, investigations and the analyst chat.

- :mod:`core.llm.settings` -- ``[claude]`` settings (models, prices, budget, limits; the key);
- :mod:`core.llm.client` -- the SDK client, readable errors, usage and cost accounting;
- :mod:`core.llm.summary` / :mod:`core.llm.batch` -- Haiku summaries, one at a time or in batches;
- :mod:`core.llm.investigate` -- root-cause narrative of one call with the larger model;
- :mod:`core.llm.chat` / :mod:`core.llm.tools` -- the streamed tool-using chat;
- :mod:`core.llm.guardrails` -- validation and read-only execution of the chat's SQL;
- :mod:`core.llm.render` -- safe Markdown for model output, deep-dive links for call ids;
- :mod:`core.llm.ports` / :mod:`core.llm.adapters` -- what these need from the store and ViciDial.

Without an API key every other part of callqa works; these raise
:class:`~core.errors.LLMNotConfiguredError` with instructions. Nothing here imports streamlit,
and importing this package does not import the SDK.
"""

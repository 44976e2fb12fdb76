"""Scaling out: analysis through a Celery task queue, shared by any number of worker machines.

Without ``[queue] broker_url`` nothing here is used: ``callqa scan`` analyses in its own
worker processes as before. With a broker (Redis or RabbitMQ) and the PostgreSQL result store
shared by every machine:

- ``callqa scan SOURCE --queue`` and ``callqa watch`` (which follows ViciDial's
  ``recording_log`` by a stored ``recording_id`` watermark) enqueue call references
  (:mod:`core.queue.enqueue`, :mod:`core.queue.watch`);
- ``callqa worker`` runs a Celery worker whose processes load the models once and analyse
  them into the store (:mod:`core.queue.tasks`); Claude summaries can go through a second,
  rate-limited queue;
- ``callqa queue-status`` and the API's ``/metrics`` (:mod:`core.queue.metrics`) show queue
  depth, throughput and dead letters.

Exactly-once effect: messages are acknowledged late (a killed worker's call is delivered
again), the worker skips calls already stored with the same cache key, claims a call before
analysing it, and the store writes each analysis idempotently. Configuration:
:mod:`core.queue.settings`; the Celery app: :mod:`core.queue.app`. This package never
imports streamlit, and ``import core.queue`` does not import Celery.
"""

from __future__ import annotations

from core.queue.settings import QueueSettings, redact_url

__all__ = ["QueueSettings", "redact_url"]

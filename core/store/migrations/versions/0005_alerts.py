"""Alerts (state, events, deliveries) and the in-group of inbound calls in its own column.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

``alert_states`` keeps one row per rule and group (ok or firing, the last value), so an alert
fires once and resolves once; ``alert_events`` is the history (what fired or resolved, with its
numbers); ``alert_deliveries`` the outbox of each event per channel, retried with backoff.
``calls.ingroup`` lets rules and fleet views group inbound calls by in-group; it is filled from
the metadata already stored (``metadata_json``), and joins the covering fleet index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FLEET = ["call_time", "layout", "agent", "campaign", "server_ip", "carrier", "duration_s", "mos_min",
          "severity_rank", "n_findings", "dead_air_s", "one_way", "finding_codes"]


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("ingroup", sa.String(100), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE calls SET ingroup = LEFT(metadata_json::json ->> 'ingroup', 100) "
                   "WHERE metadata_json IS NOT NULL AND metadata_json::json ->> 'ingroup' <> ''")
    else:
        op.execute("UPDATE calls SET ingroup = substr(CAST(json_extract(metadata_json, '$.ingroup') AS TEXT), 1, 100) "
                   "WHERE metadata_json IS NOT NULL AND json_valid(metadata_json) "
                   "AND json_extract(metadata_json, '$.ingroup') <> ''")
    op.create_index("ix_calls_ingroup_call_time", "calls", ["ingroup", "call_time"])
    op.drop_index("ix_calls_fleet", table_name="calls")
    op.create_index("ix_calls_fleet", "calls", [*_FLEET, "ingroup"])

    op.create_table(
        "alert_states",
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("group_key", sa.String(200), nullable=False),
        sa.Column("group_by", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("window_end", sa.DateTime(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("rule", "group_key", name="pk_alert_states"),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("group_by", sa.String(16), nullable=False),
        sa.Column("group_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("op", sa.String(2), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("window_end", sa.DateTime(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
    )
    op.create_index("ix_alert_events_created_at", "alert_events", ["created_at"])
    op.create_index("ix_alert_events_rule_group_key", "alert_events", ["rule", "group_key"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["alert_events.id"], name="fk_alert_deliveries_event_id_alert_events",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
    )
    op.create_index("ix_alert_deliveries_status_next_attempt_at", "alert_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_alert_deliveries_event_id", "alert_deliveries", ["event_id"])


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("alert_events")
    op.drop_table("alert_states")
    op.drop_index("ix_calls_fleet", table_name="calls")
    op.create_index("ix_calls_fleet", "calls", _FLEET)
    op.drop_index("ix_calls_ingroup_call_time", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("ingroup")

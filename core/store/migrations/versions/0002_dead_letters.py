"""Task queue: dead letters of calls that failed every retry, and delivery attempts per task.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

``dead_letters`` keeps one row per queued task that gave up (fetch failing every retry, the
worker process dying on the call again and again, a time limit, a bug), with the task's
arguments so ``callqa requeue-dead`` can enqueue it again. ``task_attempts`` counts the
deliveries of a task that started without ending cleanly, which is how a worker notices that
a call keeps killing the process analysing it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CALL_ID = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(200), nullable=False),
        sa.Column("call_id", CALL_ID, nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=True),
        sa.Column("source_ref", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.UniqueConstraint("task_id", name="uq_dead_letters_task_id"),
    )
    op.create_index("ix_dead_letters_created_at", "dead_letters", ["created_at"])
    op.create_index("ix_dead_letters_call_id", "dead_letters", ["call_id"])

    op.create_table(
        "task_attempts",
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("call_id", CALL_ID, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name="pk_task_attempts"),
    )


def downgrade() -> None:
    op.drop_table("task_attempts")
    op.drop_table("dead_letters")

"""Privacy and access: opaque call references, accounts and sessions, the audit log, chat log, tombstones.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08

``calls.ref`` is the opaque reference Claude sees instead of a call id (which holds the
customer's phone number); every stored call gets a random one here. ``users`` and ``sessions``
hold the built-in accounts of the dashboard; ``audit_log`` who played, downloaded, asked or
changed what; ``chat_log`` the chat's questions and answers (for ``[retention] chat_days``);
``purged_calls`` a keyed hash of each call the retention removed, so a deep link can say so.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("ref", sa.String(32), nullable=True))
    conn = op.get_bind()
    calls = sa.table("calls", sa.column("call_id", sa.String), sa.column("ref", sa.String))
    ids = [row[0] for row in conn.execute(sa.select(calls.c.call_id).where(calls.c.ref.is_(None)))]
    stmt = sa.update(calls).where(calls.c.call_id == sa.bindparam("cid")).values(ref=sa.bindparam("new_ref"))
    for start in range(0, len(ids), 1000):
        # "ref-" + 16 hex digits, as core.privacy.refs.new_ref makes them (copied: migrations stay frozen)
        conn.execute(stmt, [{"cid": cid, "new_ref": f"ref-{secrets.token_hex(8)}"} for cid in ids[start:start + 1000]])
    op.create_index("ix_calls_ref", "calls", ["ref"], unique=True)
    op.create_table(
        "users",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("remote", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["user_name"], ["users.name"], name="fk_sessions_user_name_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_sessions"),
    )
    op.create_index("ix_sessions_user_name", "sessions", ["user_name"])
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("remote", sa.String(64), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor", "at"])
    op.create_index("ix_audit_log_action_at", "audit_log", ["action", "at"])
    op.create_table(
        "chat_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("tools_json", sa.Text(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_log"),
    )
    op.create_index("ix_chat_log_at", "chat_log", ["at"])
    op.create_table(
        "purged_calls",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("call_date", sa.Date(), nullable=True),
        sa.Column("purged_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_purged_calls"),
    )
    op.create_index("ix_purged_calls_purged_at", "purged_calls", ["purged_at"])


def downgrade() -> None:
    op.drop_table("purged_calls")
    op.drop_table("chat_log")
    op.drop_table("audit_log")
    op.drop_table("sessions")
    op.drop_table("users")
    op.drop_index("ix_calls_ref", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("ref")

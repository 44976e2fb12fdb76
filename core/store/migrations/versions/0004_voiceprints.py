"""Mixed recordings split into sides: agent voiceprints, analysts' side marks, attribution columns.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

``voiceprints`` keeps one speaker embedding per ViciDial user (enrolled by hand or refreshed
from the agent legs of channel and stereo recordings); ``side_overrides`` keeps which side of a
mixed call an analyst marked as the agent; ``calls`` learns how its sides were attributed and
which voiceprints the split used (so a changed voiceprint re-analyses the calls it affects).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("attribution", sa.String(16), nullable=True))
        batch.add_column(sa.Column("attribution_confidence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("voice_key", sa.String(255), nullable=True))
    op.create_table(
        "voiceprints",
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("vector_json", sa.Text(), nullable=False),
        sa.Column("speech_s", sa.Float(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("revision_vector_json", sa.Text(), nullable=False),
        sa.Column("recordings", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("sources_json", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user", name="pk_voiceprints"),
    )
    op.create_table(
        "side_overrides",
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("agent_start_s", sa.Float(), nullable=False),
        sa.Column("set_by", sa.String(200), nullable=True),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_side_overrides"),
    )


def downgrade() -> None:
    op.drop_table("side_overrides")
    op.drop_table("voiceprints")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("voice_key")
        batch.drop_column("attribution_confidence")
        batch.drop_column("attribution")

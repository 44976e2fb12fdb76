"""AI summaries: room for a 200-character verdict (the summary validator allows up to 200).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

SQLite ignores VARCHAR lengths, but PostgreSQL refused every verdict longer than 50 characters.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_summaries") as batch:
        batch.alter_column("verdict", type_=sa.String(200), existing_type=sa.String(50), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("ai_summaries") as batch:
        batch.alter_column("verdict", type_=sa.String(50), existing_type=sa.String(200), existing_nullable=True)

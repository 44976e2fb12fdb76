"""Initial schema: calls and their analysis in rows, errors, claims, watermarks, Claude tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Written out in full (not generated from ``core/store/schema.py`` at run time) so this step
stays what it was when later migrations change the schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CALL_ID = sa.String(255)
KEY = sa.String(128)


def _call_fk(table: str) -> list:
    return [
        sa.Column("call_id", CALL_ID, nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.call_id"], ondelete="CASCADE",
                                name=f"fk_{table}_call_id_calls"),
    ]


def _index(table: str, *columns: str) -> None:
    op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns))


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("call_id", CALL_ID, nullable=False),
        sa.Column("cache_key", KEY, nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_ref", sa.Text(), nullable=False),
        sa.Column("layout", sa.String(16), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("call_time", sa.DateTime(), nullable=False),
        sa.Column("lead_id", sa.BigInteger(), nullable=True),
        sa.Column("uniqueid", sa.String(64), nullable=True),
        sa.Column("agent", sa.String(100), nullable=True),
        sa.Column("campaign", sa.String(100), nullable=True),
        sa.Column("server_ip", sa.String(64), nullable=True),
        sa.Column("carrier", sa.String(100), nullable=True),
        sa.Column("hangup_cause", sa.String(100), nullable=True),
        sa.Column("metadata_json", sa.Text(), nullable=True),
        sa.Column("mos_caller", sa.Float(), nullable=True),
        sa.Column("mos_agent", sa.Float(), nullable=True),
        sa.Column("mos_mixed", sa.Float(), nullable=True),
        sa.Column("mos_min", sa.Float(), nullable=True),
        sa.Column("n_findings", sa.Integer(), nullable=False),
        sa.Column("worst_severity", sa.String(16), nullable=True),
        sa.Column("severity_rank", sa.Integer(), nullable=False),
        sa.Column("finding_codes", sa.Text(), nullable=False),
        sa.Column("dead_air_s", sa.Float(), nullable=False),
        sa.Column("one_way", sa.Integer(), nullable=False),
        sa.Column("n_warnings", sa.Integer(), nullable=False),
        sa.Column("analysis_version", sa.String(64), nullable=False),
        sa.Column("quality_model", sa.String(64), nullable=True),
        sa.Column("analyzed_at", sa.DateTime(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(), nullable=True),
        sa.Column("analysis_json", sa.Text(), nullable=False),  # last: keeps the other columns on the row's page
        sa.PrimaryKeyConstraint("call_id", name="pk_calls"),
    )
    _index("calls", "call_time")
    for column in ("agent", "campaign", "server_ip", "carrier", "layout"):
        _index("calls", column, "call_time")
    for column in ("mos_min", "analyzed_at", "lead_id", "uniqueid"):
        _index("calls", column)
    op.create_index("ix_calls_fleet", "calls", ["call_time", "layout", "agent", "campaign", "server_ip", "carrier",
                                                "duration_s", "mos_min", "severity_rank", "n_findings", "dead_air_s",
                                                "one_way", "finding_codes"])

    op.create_table(
        "tracks",
        *_call_fk("tracks"),
        sa.Column("leg", sa.String(16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(32), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("rms_db", sa.Float(), nullable=True),
        sa.Column("peak_db", sa.Float(), nullable=True),
        sa.Column("dc_offset", sa.Float(), nullable=True),
        sa.Column("clipped_samples", sa.BigInteger(), nullable=False),
        sa.Column("clip_ratio", sa.Float(), nullable=False),
        sa.Column("speech_ratio", sa.Float(), nullable=False),
        sa.Column("speech_s", sa.Float(), nullable=False),
        sa.Column("silence_s", sa.Float(), nullable=False),
        sa.Column("n_silences", sa.Integer(), nullable=False),
        sa.Column("speech_level_db", sa.Float(), nullable=True),
        sa.Column("noise_floor_db", sa.Float(), nullable=True),
        sa.Column("snr_db", sa.Float(), nullable=True),
        sa.Column("dropouts", sa.Integer(), nullable=True),
        sa.Column("mos", sa.Float(), nullable=True),
        sa.Column("noisiness", sa.Float(), nullable=True),
        sa.Column("discontinuity", sa.Float(), nullable=True),
        sa.Column("coloration", sa.Float(), nullable=True),
        sa.Column("loudness", sa.Float(), nullable=True),
        sa.Column("quality_model", sa.String(64), nullable=True),
        sa.Column("quality_reason", sa.Text(), nullable=True),
        sa.Column("extra_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("call_id", "leg", name="pk_tracks"),
    )

    for name in ("silences", "speech_segments"):
        op.create_table(
            name,
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            *_call_fk(name),
            sa.Column("leg", sa.String(16), nullable=False),
            sa.Column("start_s", sa.Float(), nullable=False),
            sa.Column("end_s", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
        )
        _index(name, "call_id", "leg")

    op.create_table(
        "quality_windows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *_call_fk("quality_windows"),
        sa.Column("leg", sa.String(16), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("mos", sa.Float(), nullable=False),
        sa.Column("noisiness", sa.Float(), nullable=True),
        sa.Column("discontinuity", sa.Float(), nullable=True),
        sa.Column("coloration", sa.Float(), nullable=True),
        sa.Column("loudness", sa.Float(), nullable=True),
        sa.Column("speech_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_quality_windows"),
    )
    _index("quality_windows", "call_id", "leg")

    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *_call_fk("findings"),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("leg", sa.String(16), nullable=True),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
    )
    _index("findings", "code", "call_id")
    _index("findings", "call_id")

    op.create_table(
        "warnings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *_call_fk("warnings"),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_warnings"),
    )
    _index("warnings", "call_id")

    op.create_table(
        "analysis_errors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", CALL_ID, nullable=False),
        sa.Column("cache_key", KEY, nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_ref", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_analysis_errors"),
        sa.UniqueConstraint("call_id", "cache_key", name="uq_analysis_errors_call_id_cache_key"),
    )
    _index("analysis_errors", "created_at")

    op.create_table(
        "claims",
        sa.Column("call_id", CALL_ID, nullable=False),
        sa.Column("cache_key", KEY, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_claims"),
    )
    _index("claims", "owner")

    op.create_table(
        "watermarks",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_watermarks"),
    )

    op.create_table(
        "ai_summaries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *_call_fk("ai_summaries"),
        sa.Column("analysis_key", KEY, nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("prompt_version", sa.String(50), nullable=False),
        sa.Column("verdict", sa.String(50), nullable=True),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("suspected_cause", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ai_summaries"),
        sa.UniqueConstraint("call_id", "analysis_key", "model", "prompt_version",
                            name="uq_ai_summaries_call_id_analysis_key_model_prompt_version"),
    )

    op.create_table(
        "llm_usage",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "kind", "model", name="pk_llm_usage"),
    )

    op.create_table(
        "llm_batches",
        sa.Column("batch_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(50), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("submitted_count", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("batch_id", name="pk_llm_batches"),
    )
    _index("llm_batches", "status")


def downgrade() -> None:
    for name in ("llm_batches", "llm_usage", "ai_summaries", "watermarks", "claims", "analysis_errors",
                 "warnings", "findings", "quality_windows", "speech_segments", "silences", "tracks", "calls"):
        op.drop_table(name)

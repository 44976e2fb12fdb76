"""The result store's tables (SQLAlchemy Core), identical on SQLite and PostgreSQL.

``calls`` holds one row per call: identity, source, ViciDial metadata when known, denormalised
headline numbers for fast lists and fleet aggregates, the cache key, and the whole
``callqa analyze --json`` document (``analysis_json``) so a stored analysis is shown exactly as it
was produced. The child tables (tracks, quality windows, silences, speech segments, findings,
warnings) are the same analysis in rows, for SQL.

Times: ``call_time`` is the wall-clock time of the call as the recording server names it
(ViciDial's FULLDATE, local time, no zone; the local time it was stored when unknown, so it is
never NULL and one index serves every order); every ``*_at`` column is UTC without a zone.

This module is the target of the migrations in ``core/store/migrations/versions``: a change
here needs a new migration (``tests/integration/test_store.py`` checks they agree).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

#: The columns of the covering index behind the fleet aggregates.
FLEET_COLUMNS = ("call_time", "layout", "agent", "campaign", "server_ip", "carrier", "duration_s", "mos_min",
                 "severity_rank", "n_findings", "dead_air_s", "one_way", "finding_codes", "ingroup")

CALL_ID = String(255)
KEY = String(128)


def _call_fk() -> Column:
    return Column("call_id", CALL_ID, ForeignKey("calls.call_id", ondelete="CASCADE"), nullable=False)


calls = Table(
    "calls",
    metadata,
    Column("call_id", CALL_ID, primary_key=True),
    Column("cache_key", KEY, nullable=False),
    Column("source_kind", String(16), nullable=False),  # folder | vicidial | file
    Column("source_ref", Text, nullable=False),
    Column("layout", String(16), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("call_time", DateTime, nullable=False),  # when unknown: when it was stored (local time)
    # ViciDial metadata when known
    Column("lead_id", BigInteger, nullable=True),
    Column("uniqueid", String(64), nullable=True),
    Column("agent", String(100), nullable=True),  # vicidial_users.user
    Column("campaign", String(100), nullable=True),  # campaign_id or in-group
    Column("server_ip", String(64), nullable=True),
    Column("carrier", String(100), nullable=True),
    Column("hangup_cause", String(100), nullable=True),
    Column("ingroup", String(100), nullable=True),  # inbound: the in-group (vicidial_closer_log.campaign_id)
    Column("metadata_json", Text, nullable=True),  # any other metadata given with the call
    # headline numbers (denormalised from the analysis)
    Column("mos_caller", Float, nullable=True),
    Column("mos_agent", Float, nullable=True),
    Column("mos_mixed", Float, nullable=True),
    Column("mos_min", Float, nullable=True),
    Column("n_findings", Integer, nullable=False),
    Column("worst_severity", String(16), nullable=True),
    Column("severity_rank", Integer, nullable=False),  # 0 none, 1 info, 2 warning, 3 critical
    Column("finding_codes", Text, nullable=False),  # sorted distinct codes, comma separated
    Column("dead_air_s", Float, nullable=False),
    Column("one_way", Integer, nullable=False),  # 1 when a one_way_audio finding exists
    Column("n_warnings", Integer, nullable=False),
    # mixed recordings: how the two sides were attributed (core.audio.diarize)
    Column("attribution", String(16), nullable=True),  # voiceprint | heuristic | manual | none
    Column("attribution_confidence", Float, nullable=True),
    Column("voice_key", String(255), nullable=True),  # the voices the split used (reuse check)
    # provenance
    Column("analysis_version", String(64), nullable=False),
    Column("quality_model", String(64), nullable=True),
    Column("analyzed_at", DateTime, nullable=False),
    Column("fetched_at", DateTime, nullable=True),  # remote recordings: when the bytes were fetched
    # the opaque reference Claude sees instead of the call id (random, set once, core.privacy.refs)
    Column("ref", String(32), nullable=True),
    # last: a large value, so the columns before it stay in the row's first page on SQLite
    Column("analysis_json", Text, nullable=False),
    Index(None, "call_time"),
    Index(None, "agent", "call_time"),
    Index(None, "campaign", "call_time"),
    Index(None, "server_ip", "call_time"),
    Index(None, "carrier", "call_time"),
    Index(None, "layout", "call_time"),
    Index(None, "ingroup", "call_time"),
    Index(None, "mos_min"),
    Index(None, "analyzed_at"),
    Index(None, "lead_id"),
    Index(None, "uniqueid"),
    Index(None, "ref", unique=True),
    # covers the fleet aggregates (core.store.queries) so they never read the wide rows
    Index("ix_calls_fleet", *FLEET_COLUMNS),
)

tracks = Table(
    "tracks",
    metadata,
    _call_fk(),
    Column("leg", String(16), nullable=False),  # caller | agent | mixed
    Column("source", Text, nullable=False),
    Column("sample_rate", Integer, nullable=False),
    Column("encoding", String(32), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("rms_db", Float, nullable=True),
    Column("peak_db", Float, nullable=True),
    Column("dc_offset", Float, nullable=True),
    Column("clipped_samples", BigInteger, nullable=False),
    Column("clip_ratio", Float, nullable=False),
    Column("speech_ratio", Float, nullable=False),
    Column("speech_s", Float, nullable=False),
    Column("silence_s", Float, nullable=False),
    Column("n_silences", Integer, nullable=False),
    Column("speech_level_db", Float, nullable=True),
    Column("noise_floor_db", Float, nullable=True),
    Column("snr_db", Float, nullable=True),
    Column("dropouts", Integer, nullable=True),
    Column("mos", Float, nullable=True),
    Column("noisiness", Float, nullable=True),
    Column("discontinuity", Float, nullable=True),
    Column("coloration", Float, nullable=True),
    Column("loudness", Float, nullable=True),
    Column("quality_model", String(64), nullable=True),
    Column("quality_reason", Text, nullable=True),
    Column("extra_json", Text, nullable=True),  # leg keys not in a column (added by later versions)
    PrimaryKeyConstraint("call_id", "leg"),
)


def _interval_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        _call_fk(),
        Column("leg", String(16), nullable=False),
        Column("start_s", Float, nullable=False),
        Column("end_s", Float, nullable=False),
        Index(None, "call_id", "leg"),
    )


silences = _interval_table("silences")
speech_segments = _interval_table("speech_segments")

quality_windows = Table(
    "quality_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _call_fk(),
    Column("leg", String(16), nullable=False),
    Column("start_s", Float, nullable=False),
    Column("end_s", Float, nullable=False),
    Column("mos", Float, nullable=False),
    Column("noisiness", Float, nullable=True),
    Column("discontinuity", Float, nullable=True),
    Column("coloration", Float, nullable=True),
    Column("loudness", Float, nullable=True),
    Column("speech_s", Float, nullable=True),
    Index(None, "call_id", "leg"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _call_fk(),
    Column("code", String(32), nullable=False),
    Column("leg", String(16), nullable=True),
    Column("start_s", Float, nullable=False),
    Column("end_s", Float, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Index(None, "code", "call_id"),
    Index(None, "call_id"),
)

call_warnings = Table(
    "warnings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _call_fk(),
    Column("seq", Integer, nullable=False),
    Column("message", Text, nullable=False),
    Index(None, "call_id"),
)

analysis_errors = Table(
    "analysis_errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", CALL_ID, nullable=False),  # no FK: a call that never analysed has no calls row
    Column("cache_key", KEY, nullable=False),
    Column("source_kind", String(16), nullable=False),
    Column("source_ref", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("call_id", "cache_key"),
    Index(None, "created_at"),
)

claims = Table(
    "claims",
    metadata,
    Column("call_id", CALL_ID, primary_key=True),
    Column("cache_key", KEY, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("claimed_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index(None, "owner"),
)

watermarks = Table(
    "watermarks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

ai_summaries = Table(
    "ai_summaries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _call_fk(),
    Column("analysis_key", KEY, nullable=False),  # the calls.cache_key the summary was written from
    Column("model", String(100), nullable=False),
    Column("prompt_version", String(50), nullable=False),
    Column("verdict", String(200), nullable=True),
    Column("severity", String(16), nullable=True),
    Column("summary", Text, nullable=False),
    Column("suspected_cause", Text, nullable=True),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("call_id", "analysis_key", "model", "prompt_version"),
)

llm_usage = Table(
    "llm_usage",
    metadata,
    Column("day", Date, primary_key=True),
    Column("kind", String(50), primary_key=True),  # summary | chat | batch ...
    Column("model", String(100), primary_key=True),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("calls", Integer, nullable=False),
)

llm_batches = Table(
    "llm_batches",
    metadata,
    Column("batch_id", String(200), primary_key=True),
    Column("status", String(50), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("submitted_count", Integer, nullable=False),
    Column("finished_at", DateTime, nullable=True),
    Column("error", Text, nullable=True),
    Index(None, "status"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False),  # one record per queued task, whatever its retries
    Column("task", String(64), nullable=False),  # analyze_call | summarize_call
    Column("queue", String(200), nullable=False),
    Column("call_id", CALL_ID, nullable=False),  # no FK: a call that never analysed has no calls row
    Column("source_kind", String(16), nullable=True),
    Column("source_ref", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("payload_json", Text, nullable=False),  # the task's arguments, to enqueue it again
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("task_id"),
    Index(None, "created_at"),
    Index(None, "call_id"),
)

task_attempts = Table(
    "task_attempts",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("call_id", CALL_ID, nullable=False),
    Column("attempts", Integer, nullable=False),  # deliveries started without a clean end (worker deaths + 1)
    Column("updated_at", DateTime, nullable=False),
)

voiceprints = Table(
    "voiceprints",
    metadata,
    Column("user", String(100), primary_key=True),  # vicidial_users.user
    Column("model", String(64), nullable=False),  # the speaker-embedding model the vector belongs to
    Column("vector_json", Text, nullable=False),  # the unit embedding, a JSON list of floats
    Column("speech_s", Float, nullable=False),  # seconds of speech behind it (weight of a refresh)
    # bumped when the vector moved noticeably since the last revision: the cache identity of the
    # mixed calls attributed with it (a refresh that barely moves it re-analyses nothing)
    Column("revision", Integer, nullable=False),
    Column("revision_vector_json", Text, nullable=False),
    Column("recordings", Integer, nullable=False),  # recordings merged into it
    Column("origin", String(16), nullable=False),  # enrolled (by hand) | auto (agent legs) | manual (a marked side)
    Column("sources_json", Text, nullable=True),  # the last few recordings it was refreshed from
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

side_overrides = Table(
    "side_overrides",
    metadata,
    Column("call_id", CALL_ID, primary_key=True),  # kept when the call is analysed again
    Column("agent_start_s", Float, nullable=False),  # first speech of the side an analyst marked as the agent
    Column("set_by", String(200), nullable=True),
    Column("set_at", DateTime, nullable=False),
)

# --- alerts (core.alerts) ---------------------------------------------------------------------------
alert_states = Table(
    "alert_states",
    metadata,
    Column("rule", String(200), nullable=False),
    Column("group_key", String(200), nullable=False),  # the carrier, agent... ("fleet" for the whole fleet)
    Column("group_by", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # ok | firing
    Column("value", Float, nullable=True),  # at the last evaluation (None: no calls counted)
    Column("calls", Integer, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("since", DateTime, nullable=False),  # when the current state began
    Column("evaluated_at", DateTime, nullable=False),
    Column("window_start", DateTime, nullable=False),  # call-time window of the last evaluation (local)
    Column("window_end", DateTime, nullable=False),
    Column("event_id", Integer, nullable=True),  # the event that started the current state
    PrimaryKeyConstraint("rule", "group_key"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(200), nullable=False),
    Column("group_by", String(16), nullable=False),
    Column("group_key", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # firing | resolved
    Column("severity", String(16), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("op", String(2), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("value", Float, nullable=True),
    Column("calls", Integer, nullable=False),
    Column("window_start", DateTime, nullable=False),
    Column("window_end", DateTime, nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index(None, "created_at"),
    Index(None, "rule", "group_key"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Integer, ForeignKey("alert_events.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(16), nullable=False),  # webhook | email
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("lease_until", DateTime, nullable=True),  # a deliverer holds it until then
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime, nullable=True),
    Index(None, "status", "next_attempt_at"),
    Index(None, "event_id"),
)

# --- access, audit, retention (core.access, core.audit, core.retention) --------------------------
users = Table(
    "users",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(16), nullable=False),  # viewer | analyst | admin
    Column("password_hash", String(255), nullable=False),  # scrypt (core.access.passwords)
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("last_login_at", DateTime, nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the cookie's token, never the token
    Column("user_name", String(100), ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),  # absolute end ([access] session_hours)
    Column("last_seen_at", DateTime, nullable=False),  # idle end: last_seen_at + [access] idle_minutes
    Column("remote", String(64), nullable=True),
    Index(None, "user_name"),
    Index(None, "expires_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("actor", String(200), nullable=False),  # user, api:<key name>, cli:<os user>, anonymous
    Column("role", String(16), nullable=True),
    Column("source", String(16), nullable=False),  # dashboard | api | cli
    Column("action", String(64), nullable=False),  # audio.play, summary, chat.sql, user.add ...
    Column("target", String(255), nullable=True),  # a call id, a user, a setting
    Column("detail", Text, nullable=True),
    Column("remote", String(64), nullable=True),
    Column("prev_hash", String(64), nullable=False),  # hash chain: each entry seals the one before
    Column("hash", String(64), nullable=False),
    Index(None, "at"),
    Index(None, "actor", "at"),
    Index(None, "action", "at"),
)

chat_log = Table(
    "chat_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("source", String(16), nullable=False),
    Column("question", Text, nullable=False),  # as sent to Claude (redacted)
    Column("answer", Text, nullable=False),  # as Claude wrote it (opaque call references)
    Column("tools_json", Text, nullable=True),  # the tools it ran, SQL included
    Column("cost_usd", Float, nullable=False),
    Index(None, "at"),
)

purged_calls = Table(
    "purged_calls",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # keyed hash of the call id: the id itself is gone
    Column("call_date", Date, nullable=True),
    Column("purged_at", DateTime, nullable=False),
    Index(None, "purged_at"),
)

#: Child tables of a call's analysis, deleted and rewritten when the analysis is replaced.
ANALYSIS_CHILDREN = (tracks, quality_windows, silences, speech_segments, findings, call_warnings)

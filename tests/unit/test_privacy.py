"""What Claude may read and what viewers see: redaction, opaque references, masking, the SQL column rules."""

from __future__ import annotations

import json
import logging

import pytest

from core.errors import ConfigError, QueryRefusedError
from core.llm.guardrails import sql_tokens
from core.privacy.mask import MaskingFilter, mask_call_id, mask_frame, mask_phone, mask_record, mask_text
from core.privacy.redact import STRICT, WITHHELD, Policy, Redactor, check_sql_columns
from core.privacy.refs import is_ref, new_ref, reveal
from core.privacy.settings import PrivacySettings

CALL = "20261107-081637_2496561430"
REF = "ref-0123456789abcdef"


@pytest.mark.parametrize("text,phone", [
    ("call 3125551212 back", "3125551212"),
    ("+13125551212", "+13125551212"),
    ("dial (312) 555-1212 now", "(312) 555-1212"),
    ("+1 312 555 1212", "+1 312 555 1212"),
    ("+44 20 7946 0018 (London)", "+44 20 7946 0018"),
    ("Local/913125551212@default-0000a1b2;2", "913125551212"),
    ("tel:7735550142.", "7735550142"),
])
def test_phone_numbers_are_removed_from_text(text: str, phone: str) -> None:
    out = Redactor().text(text)
    assert phone not in out and "[phone]" in out
    assert not any(run in out for run in ("3125551212", "5551212", "7946 0018", "7735550142"))


@pytest.mark.parametrize("text", [
    "2026-11-07 08:16:37",  # a date-time
    "uniqueid 1756476900.48213",  # Asterisk's uniqueid: seconds.sequence
    "V1070816250003000002",  # a caller_code
    "MOS 2.41, 25 dropouts in 14 s",
    "cache 7ec4cf93a1b2c3d4e5f60718293a4b5c",  # hex digests
])
def test_ordinary_values_are_left_alone(text: str) -> None:
    assert Redactor().text(text) == text


def test_call_ids_become_references_and_unknown_ids_lose_their_number() -> None:
    seen: list[list[str]] = []

    def lookup(ids: list[str]) -> dict[str, str]:
        seen.append(ids)
        return {CALL: REF} if CALL in ids else {}

    r = Redactor(lookup=lookup)
    out = r.text(f"/rec/{CALL}-in.wav and 20261108-091500_5550001234")
    assert out == f"/rec/{REF}-in.wav and 20261108-091500_[phone]"
    assert seen == [[CALL, "20261108-091500_5550001234"]]  # one lookup for the whole text
    assert r.refs == {CALL: REF}
    assert reveal(f"see {REF}.", r.refs) == f"see {CALL}."


def test_emails_and_addresses_are_removed() -> None:
    out = Redactor().text("Mail jane.doe+x@example.co.uk, ship to 1600 Pennsylvania Avenue NW")
    assert out == "Mail [email], ship to [address] NW"


def test_rows_withhold_personal_columns_and_redact_json_key_by_key() -> None:
    r = Redactor(refs={CALL: REF})
    rows = r.rows([{
        "call_id": CALL, "phone_number": "2496561430", "caller_id_name": "MARGARET HAMILTON",
        "full_name": "Grace Hopper", "email": "m@example.com", "address1": "1 Main St", "status": "SALE",
        "uniqueid": "1794039385.70490", "lead_id": 3000002, "start_epoch": 1794039397,
        "metadata_json": json.dumps({"phone_number": "2496561430", "first_name": "Margaret", "status": "NI",
                                     "filename": CALL, "comments": "call me on 2496561430"}),
    }])
    (row,) = rows
    assert row["call_id"] == REF
    for key in ("phone_number", "caller_id_name", "full_name", "email", "address1"):
        assert row[key] == WITHHELD, key
    assert (row["status"], row["uniqueid"], row["lead_id"], row["start_epoch"]) == (
        "SALE", "1794039385.70490", 3000002, 1794039397)
    meta = json.loads(row["metadata_json"])
    assert meta == {"comments": "call me on [phone]", "filename": WITHHELD, "first_name": WITHHELD,
                    "phone_number": WITHHELD, "status": "NI"}
    assert "2496561430" not in json.dumps(rows) and "Hamilton" not in json.dumps(rows).title()


def test_a_data_processing_agreement_can_allow_categories() -> None:
    policy = PrivacySettings.from_mapping({"send_to_claude": ["names", "emails"]}).policy
    r = Redactor(policy=policy)
    row = r.row({"full_name": "Grace Hopper", "phone_number": "2496561430", "email": "g@example.com",
                 "comments": "mail g@example.com or 2496561430"})
    assert row == {"full_name": "Grace Hopper", "phone_number": WITHHELD, "email": "g@example.com",
                   "comments": "mail g@example.com or [phone]"}
    assert STRICT == Policy() and PrivacySettings().policy == STRICT  # the default sends none
    with pytest.raises(ConfigError, match="unknown category social_security"):
        PrivacySettings.from_mapping({"send_to_claude": ["social_security"]})


@pytest.mark.parametrize("sql,reason", [
    ("SELECT phone_number FROM vicidial_log", "column phone_number holds personal data"),
    ("SELECT caller_id_name AS n FROM vicidial_did_log", "column caller_id_name"),
    ("SELECT COUNT(*) FROM vicidial_log WHERE phone_number LIKE '312%'", "column phone_number"),
    ('SELECT "full_name" FROM vicidial_users', "column full_name"),
    ("SELECT metadata_json FROM calls", "column metadata_json"),
    ("SELECT source_ref FROM calls", "column source_ref"),
    ("SELECT substr(call_id, 17) FROM calls", r"SUBSTR\(\) on call_id"),
    ("SELECT MAX(LENGTH(c.call_id)) FROM calls c", r"LENGTH\(\) on call_id"),
    ("SELECT COUNT(*) FROM calls WHERE call_id LIKE '%5551212'", "call ids hold the customer's number"),
    ("SELECT mos_min FROM calls WHERE call_id = '20261107-081637_2496561430'", "call ids hold"),
    ("SELECT call_id || 'x' FROM calls", "call ids hold"),
])
def test_sql_naming_personal_columns_or_probing_call_ids_is_refused(sql: str, reason: str) -> None:
    with pytest.raises(QueryRefusedError, match=reason):
        check_sql_columns(sql_tokens(sql, "sqlite"), STRICT)


@pytest.mark.parametrize("sql", [
    "SELECT call_id, mos_min FROM calls ORDER BY mos_min LIMIT 5",
    "SELECT c.ref, COUNT(DISTINCT f.call_id) FROM calls c JOIN findings f ON f.call_id = c.call_id GROUP BY c.ref",
    "SELECT code FROM findings WHERE call_id IN (SELECT call_id FROM calls WHERE ref = 'ref-0123456789abcdef')",
    "SELECT * FROM vicidial_log WHERE status = 'SALE'",
    "SELECT MIN(call_id), MAX(call_id) FROM calls",
])
def test_ordinary_analyst_sql_passes(sql: str) -> None:
    check_sql_columns(sql_tokens(sql, "sqlite"), STRICT)


def test_phone_numbers_allowed_lifts_the_call_id_rules() -> None:
    policy = Policy(phone_numbers=True)
    check_sql_columns(sql_tokens("SELECT phone_number, substr(call_id, 17) FROM calls", "sqlite"), policy)
    with pytest.raises(QueryRefusedError, match="caller_id_name"):
        check_sql_columns(sql_tokens("SELECT caller_id_name FROM vicidial_did_log", "sqlite"), policy)


def test_references_are_random_and_recognisable() -> None:
    refs = {new_ref() for _ in range(1000)}
    assert len(refs) == 1000 and all(is_ref(r) and len(r) == 20 for r in refs)
    assert not is_ref(CALL) and not is_ref("ref-xyz")


def test_masking_keeps_the_last_digits_and_the_call_date() -> None:
    assert mask_phone("3125551212") == "••••••••12"
    assert mask_phone("+1 (312) 555-1212", visible=3) == "+• (•••) •••-•212"
    assert mask_call_id(CALL) == "20261107-081637_••••••••30"
    assert mask_text(f"{CALL} called 3125551212, mail jo@example.com") == (
        "20261107-081637_••••••••30 called ••••••••12, mail •••@example.com")
    row = mask_record({"call_id": CALL, "phone_number": "2496561430", "full_name": "Grace Hopper", "mos_min": 2.1,
                       "agent": "6012"})
    assert row == {"call_id": "20261107-081637_••••••••30", "phone_number": "••••••••30", "mos_min": 2.1,
                   "agent": "6012"}


def test_masking_a_frame_drops_names_and_masks_numbers() -> None:
    import pandas as pd

    frame = pd.DataFrame({"call_id": [CALL], "phone_number": ["2496561430"], "caller_id_name": ["M. Hamilton"],
                          "mos_min": [2.1]})
    out = mask_frame(frame)
    assert list(out.columns) == ["call_id", "phone_number", "mos_min"]
    assert out.iloc[0].tolist() == ["20261107-081637_••••••••30", "••••••••30", 2.1]
    assert frame.iloc[0]["phone_number"] == "2496561430"  # the original is untouched


def test_log_records_are_masked_but_keep_their_argument_shape() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", f"/calls?text={CALL}", "1.1", 200), None)
    MaskingFilter().filter(record)
    assert isinstance(record.args, tuple) and len(record.args) == 5  # uvicorn unpacks them
    assert record.getMessage() == '127.0.0.1:5000 - "GET /calls?text=20261107-081637_••••••••30 HTTP/1.1" 200'


def test_masked_log_lines_keep_task_ids_whole() -> None:
    # a Celery task id whose last group is twelve decimal digits is an id, not a phone number
    line = ("busy 20261107-104610_2496561454: being analysed [task b37020c6-cd52-4f75-944d-123456789022, 0.01 s] "
            "caller 3125551212")
    masked = mask_text(line)
    assert "b37020c6-cd52-4f75-944d-123456789022" in masked
    assert "20261107-104610_••••••••54" in masked and "••••••••12" in masked and "3125551212" not in masked
    assert mask_text("id 123e4567-e89b-12d3-a456-426614174000") == "id 123e4567-e89b-12d3-a456-426614174000"

"""What is removed from data before Claude sees it: phone numbers, names, addresses, emails.

Two layers, both driven by one :class:`Policy` (``[privacy] send_to_claude``; the default
withholds every category):

- **By column.** A value in a column that holds personal data (``phone_number``,
  ``caller_id_name``, ``full_name``, ``email``, ``address1``, the recording's ``filename`` and
  ``location``...) becomes ``[withheld]``; JSON columns (``metadata_json``, ``analysis_json``)
  are redacted key by key. :func:`check_sql_columns` refuses the chat's SQL when it names such a
  column at all, so an alias (``caller_id_name AS n``) cannot rename it past the first check.
- **By pattern.** Every other text has call ids (``YYYYMMDD-HHMMSS_<phone>``) replaced by their
  opaque reference (:mod:`core.privacy.refs`), phone numbers (7-15 digits, or written with
  separators) by ``[phone]``, emails by ``[email]`` and street addresses by ``[address]``.

Names inside free text cannot be recognised by a pattern; the tables that hold them
(``vicidial_list``) are not readable by the chat, and the columns that do are withheld.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import QueryRefusedError

CATEGORIES = ("phone_numbers", "names", "addresses", "emails")
WITHHELD = "[withheld]"

#: ViciDial call ids and recording names: FULLDATE, then the customer's number (or another id).
CALL_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{8}-\d{6}_\d{3,20})(?!\d)")
# a run of 7-15 digits; not a uniqueid's first half (1756476900.48213), not the date of a call id
_PHONE_RUN = r"(?<![0-9A-Za-z.])\+?\d{7,15}(?![0-9A-Za-z]|\.\d|-\d{6}(?!\d))"
_PHONE_NANP = r"(?<![0-9A-Za-z])(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?![0-9A-Za-z])"
_PHONE_INTL = r"(?<![0-9A-Za-z])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,5}(?![0-9A-Za-z])"
PHONE_RE = re.compile(f"{_PHONE_INTL}|{_PHONE_NANP}|{_PHONE_RUN}")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
ADDRESS_RE = re.compile(
    r"\b\d{1,6}\s+(?:[A-Za-z0-9'.-]+\s+){0,4}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|"
    r"court|ct|way|place|pl|terrace|parkway|pkwy|highway|hwy|square|sq|strasse|straße)\b\.?", re.IGNORECASE)

#: Columns whose values are personal data, by category (lower-case names).
PERSONAL_COLUMNS: dict[str, frozenset[str]] = {
    "phone_numbers": frozenset({
        "phone_number", "phone", "alt_phone", "caller_id_number", "callerid", "number_dialed",
        # recording names and places carry the customer's number (FULLDATE_CUSTPHONE)
        "filename", "location", "source", "source_ref", "sources", "recording_filename",
    }),
    "names": frozenset({"full_name", "first_name", "middle_initial", "last_name", "caller_id_name",
                        "set_by"}),
    "addresses": frozenset({"address1", "address2", "address3", "city", "state", "province", "postal_code"}),
    "emails": frozenset({"email"}),
}
#: Columns holding JSON documents: redacted key by key.
JSON_COLUMNS = frozenset({"metadata_json", "analysis_json", "extra_json", "sources_json", "payload_json"})
#: Identifier columns whose digits are not phone numbers (uniqueids, lead and recording ids...).
ID_COLUMNS = frozenset({
    "uniqueid", "vicidial_id", "closecallid", "lead_id", "recording_id", "caller_code", "xfercallid", "list_id",
    "user", "agent", "cache_key", "analysis_key", "voice_key", "agent_log_id", "did_id", "server_ip", "ref",
    "batch_id", "task_id", "model", "analysis_version", "quality_model",
})
CALL_ID_COLUMNS = frozenset({"call_id"})


@dataclass(frozen=True)
class Policy:
    """Which categories of personal data may be sent to Claude (``[privacy] send_to_claude``).

    The default sends none: every field is False.
    """

    phone_numbers: bool = False
    names: bool = False
    addresses: bool = False
    emails: bool = False

    @classmethod
    def allowing(cls, categories: Iterable[str]) -> Policy:
        allowed = set(categories)
        return cls(**{c: c in allowed for c in CATEGORIES})

    def allows(self, category: str) -> bool:
        return bool(getattr(self, category))

    @property
    def withheld_columns(self) -> frozenset[str]:
        """Columns whose values are replaced (and which the chat's SQL may not name)."""
        out: set[str] = set()
        for category, columns in PERSONAL_COLUMNS.items():
            if not self.allows(category):
                out |= columns
        return frozenset(out)


STRICT = Policy()


@dataclass
class Redactor:
    """Redacts text and rows for one request, turning call ids into their opaque references.

    Parameters
    ----------
    policy : Policy
    refs : dict of str to str
        ``call_id -> ref`` already known; extended by ``lookup`` and read back by the caller
        (to reveal references in the answer to a person allowed to see the ids).
    lookup : callable, optional
        ``lookup(call_ids) -> {call_id: ref}`` for ids found in text (the store); ids it does
        not know keep their date and lose the number (``20261107-081637_[phone]``).
    """

    policy: Policy = STRICT
    refs: dict[str, str] = field(default_factory=dict)
    lookup: Callable[[list[str]], Mapping[str, str]] | None = None
    _unknown: set[str] = field(default_factory=set, repr=False)

    # --- references ------------------------------------------------------------------------------
    def learn(self, call_ids: Iterable[str]) -> None:
        """Look up the references of ``call_ids`` not known yet (one query; misses are remembered)."""
        missing = sorted({str(c) for c in call_ids if c and str(c) not in self.refs and str(c) not in self._unknown})
        if missing and self.lookup is not None:
            self.refs.update(self.lookup(missing))
            self._unknown.update(c for c in missing if c not in self.refs)

    def ref(self, call_id: str) -> str:
        """The reference of ``call_id`` (looked up when needed), or the id with its number removed."""
        if call_id not in self.refs:
            self.learn([call_id])
        known = self.refs.get(call_id)
        return known if known else self._unknown_id(call_id)

    @staticmethod
    def _unknown_id(call_id: str) -> str:
        match = CALL_ID_RE.fullmatch(call_id)
        if match:
            return call_id.split("_", 1)[0] + "_[phone]"
        return PHONE_RE.sub("[phone]", call_id)

    # --- text ------------------------------------------------------------------------------------
    def text(self, value: str) -> str:
        """``value`` with call ids, phone numbers, emails and addresses replaced (as the policy says)."""
        if not value:
            return value
        ids = CALL_ID_RE.findall(value)
        if ids:
            self.learn(ids)
            value = CALL_ID_RE.sub(lambda m: self.ref(m.group(1)), value)
        for call_id, ref in self.refs.items():  # ids of any shape the caller already mapped
            if len(call_id) >= 6 and call_id in value:
                value = value.replace(call_id, ref)
        if not self.policy.emails:
            value = EMAIL_RE.sub("[email]", value)
        if not self.policy.phone_numbers:
            value = PHONE_RE.sub("[phone]", value)
        if not self.policy.addresses:
            value = ADDRESS_RE.sub("[address]", value)
        return value

    # --- values and rows -------------------------------------------------------------------------
    def value(self, key: str | None, value: Any) -> Any:
        """One value of column (or JSON key) ``key``, redacted."""
        name = (key or "").lower()
        if value is None or value == "":
            return value
        if name in self.policy.withheld_columns:
            return WITHHELD
        if isinstance(value, Mapping):
            return {str(k): self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(key, v) for v in value]
        if not isinstance(value, str):
            return value
        if name in CALL_ID_COLUMNS:
            return self.ref(value)
        if name in JSON_COLUMNS:
            try:
                parsed = json.loads(value)
            except ValueError:
                return self.text(value)
            return json.dumps(self.value(None, parsed), ensure_ascii=False, sort_keys=True)
        if name in ID_COLUMNS or name.endswith("_epoch"):
            return value
        return self.text(value)

    def row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {str(k): self.value(str(k), v) for k, v in row.items()}

    def rows(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Every row redacted, the call ids of all of them looked up in one query first."""
        rows = list(rows)
        self.learn(str(r[c]) for r in rows for c in r if str(c).lower() in CALL_ID_COLUMNS and r[c])
        return [self.row(r) for r in rows]


# --- the chat's SQL ----------------------------------------------------------------------------------
_CALL_ID_OK_FUNCTIONS = frozenset({"COUNT", "MIN", "MAX", "COALESCE"})
#: Words before "(" that are not function calls.
_NOT_FUNCTIONS = frozenset({"IN", "EXISTS", "ON", "AND", "OR", "NOT", "WHERE", "AS", "FROM", "JOIN", "WHEN", "THEN",
                            "ELSE", "OVER", "SELECT", "HAVING", "BY", "USING", "VALUES", "ANY", "ALL", "SOME",
                            "DISTINCT", "RETURN", "UNION"})
_PATTERN_WORDS = frozenset({"LIKE", "GLOB", "REGEXP", "RLIKE", "MATCH", "SIMILAR", "ILIKE"})


def check_sql_columns(identifiers: list[tuple[str, str]], policy: Policy) -> None:
    """Refuse SQL that names a personal column or probes call ids, before it runs.

    Parameters
    ----------
    identifiers : list of (kind, text)
        The statement's tokens as :func:`core.llm.guardrails.sql_tokens` returns them.
    policy : Policy

    Raises
    ------
    QueryRefusedError
        A withheld column is named anywhere in the statement, or (phone numbers withheld) a
        call id is passed to a text function, matched against a pattern, concatenated or
        compared with a literal: call ids hold the customer's number.
    """
    withheld = policy.withheld_columns | (JSON_COLUMNS if not policy.phone_numbers else frozenset())
    for kind, text in identifiers:
        if kind in ("word", "qident") and text.lower() in withheld:
            raise QueryRefusedError(
                f"query refused: column {text.lower()} holds personal data and is not available to the assistant "
                "([privacy] send_to_claude)")
    if policy.phone_numbers:
        return
    stack: list[str] = []  # per open parenthesis: the function it calls ("" for grouping, subqueries, IN)
    for i, (kind, text) in enumerate(identifiers):
        if kind == "op" and text == "(":
            prev = identifiers[i - 1] if i else ("", "")
            nxt = identifiers[i + 1] if i + 1 < len(identifiers) else ("", "")
            called = prev[0] in ("word", "qident") and prev[1].upper() not in _NOT_FUNCTIONS
            starts_query = nxt[0] == "word" and nxt[1].upper() in ("SELECT", "WITH")
            stack.append(prev[1].upper() if called and not starts_query else "")
        elif kind == "op" and text == ")" and stack:
            stack.pop()
        elif kind in ("word", "qident") and text.lower() == "call_id":
            near = identifiers[max(0, i - 2):i + 3]
            if any(k == "string" for k, _ in near) or any(
                    k == "word" and t.upper() in _PATTERN_WORDS for k, t in near) or any(
                    k == "op" and t == "|" for k, t in near):
                raise QueryRefusedError("query refused: call ids hold the customer's number; compare them only "
                                        "with other call_id columns (filter one call by calls.ref)")
            probing = [f for f in stack if f and f not in _CALL_ID_OK_FUNCTIONS]
            if probing:
                raise QueryRefusedError(f"query refused: {probing[-1]}() on call_id is not allowed (call ids hold "
                                        "the customer's number; use calls.ref to name a call)")

"""Guardrails for the SQL the chat runs: validation first, then a read-only, capped execution.

Defence in depth, because the model writes the SQL and the data it reads may carry injected
instructions:

1. :func:`validate_select` accepts exactly one ``SELECT``/``WITH`` statement over an allow-list
   of tables, calling only allow-listed functions and casting only to allow-listed types of
   its dialect (:mod:`core.llm.sqlvocab`). Its own tokenizer refuses whatever dialects read differently (backslashes in
   strings, ``--`` without a space, nested or ``/*!`` comments, ``#``), non-ASCII text outside
   string literals (homoglyphs, full-width semicolons) and invisible characters anywhere, every
   write or session keyword (``INSERT`` ... ``ATTACH``, ``PRAGMA``, ``SET``, ``INTO OUTFILE``,
   ``FOR UPDATE``), time and file functions (``SLEEP``, ``BENCHMARK``, ``LOAD_FILE`` ...), system
   catalogs (``information_schema``, ``mysql``, ``sqlite_master``, ``pg_*`` ...), schema-qualified
   and table-valued sources, and appends a ``LIMIT`` (or refuses one above the row cap).
2. The statement then runs on a connection that cannot write: SQLite opened with ``mode=ro``,
   ``PRAGMA query_only`` and an authorizer allowing only SELECT, reads of allow-listed tables
   and allow-listed functions; PostgreSQL in a ``READ ONLY`` transaction with
   ``statement_timeout``, as the role :data:`core.store.sqlrole.SQL_ROLE` that may read only
   the allow-listed tables (created by ``callqa migrate``); ViciDial through the read-only
   session of :mod:`core.vicidial` (``max_statement_time``).
3. Results are capped in rows and in bytes of JSON before anything reaches the model.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import QueryRefusedError, StoreError
from core.jsonable import json_value
from core.llm.sqlvocab import (
    ALLOWED_FUNCTIONS,
    ALLOWED_TYPES,
    CALL_ONLY,
    DENIED_FUNCTIONS,
    DENIED_KEYWORDS,
    LITERAL_PREFIX_KEYWORDS,
    PAREN_KEYWORDS,
    SYSTEM_NAMES,
    SYSTEM_PREFIXES,
)

# --- vocabulary (allow-lists per dialect: core.llm.sqlvocab) -----------------------------------
_CALL_ONLY = CALL_ONLY
#: Words that end a FROM clause at the same nesting level.
_CLAUSE_END = frozenset("WHERE GROUP HAVING ORDER LIMIT OFFSET UNION INTERSECT EXCEPT WINDOW SELECT QUALIFY".split())
_JOIN_WORDS = frozenset({"JOIN", "STRAIGHT_JOIN"})
_DIALECTS = ("sqlite", "postgresql", "mysql")
_CONTROL_OK = {"\t", "\n", "\r"}
_OPERATOR_CHARS = set("(),.*+-/%=<>!|&^~;:[]")
_QIDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SqlLimits:
    """Caps on one query: rows fetched, bytes of JSON returned, seconds of execution."""

    max_rows: int = 200
    max_bytes: int = 60_000
    timeout_s: float = 10.0


@dataclass(frozen=True)
class CheckedSql:
    """A statement that passed :func:`validate_select`.

    Attributes
    ----------
    sql : str
        What is executed: the statement with comments removed, without a trailing ``;``,
        with ``LIMIT <max_rows + 1>`` appended when it had no top-level ``LIMIT``.
    tables : tuple of str
        The (lower-case) tables it reads.
    """

    sql: str
    tables: tuple[str, ...]


@dataclass(frozen=True)
class SqlResult:
    """Rows of a guarded query, capped.

    Attributes
    ----------
    sql : str
        The statement as executed.
    columns : tuple of str
    rows : tuple of dict
        JSON-ready rows (times as text, bytes decoded), at most the row cap.
    truncated : str or None
        Why rows were dropped (``row cap 200``, ``byte cap 60000``), None when complete.
    elapsed_s : float
    """

    sql: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    truncated: str | None = None
    elapsed_s: float = 0.0
    tables: tuple[str, ...] = field(default=())

    @property
    def row_count(self) -> int:
        return len(self.rows)


# --- tokenizer ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Token:
    kind: str  # word | qident | string | number | op
    text: str  # words upper-cased; quoted identifiers without quotes
    raw: str
    pos: int


def _refuse(reason: str) -> QueryRefusedError:
    return QueryRefusedError(f"query refused: {reason}")


def _check_characters(sql: str) -> None:
    for ch in sql:
        if ch in _CONTROL_OK:
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or (cat == "Zs" and ch != " "):
            raise _refuse(f"invisible or control character U+{ord(ch):04X}")


def _tokenize(sql: str, dialect: str) -> list[_Token]:
    """Split ``sql`` into tokens, dropping comments; refuse anything dialects read differently."""
    tokens: list[_Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in " \t\r\n":
            i += 1
        elif sql.startswith("--", i):
            nxt = sql[i + 2] if i + 2 < n else "\n"
            if nxt not in " \t\r\n":
                raise _refuse("'--' must be followed by a space to start a comment")
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise _refuse("unterminated /* comment")
            body = sql[i + 2:end]
            if body[:1] in ("!", "+") or body[:2] == "M!" or "/*" in body:
                raise _refuse("executable, hint or nested comments are not allowed")
            i = end + 2
        elif ch == "#":
            raise _refuse("'#' comments are not allowed")
        elif ch == "'" or (ch == '"' and dialect == "mysql"):
            end, text = _quoted(sql, i, ch)
            tokens.append(_Token("string", text, sql[i:end], i))
            i = end
        elif ch in '"`' or (ch == "[" and dialect == "sqlite"):
            close = "]" if ch == "[" else ch
            end, text = _quoted(sql, i, close)
            if not _QIDENT.match(text):
                raise _refuse(f"quoted identifier {text[:40]!r} must be letters, digits and underscores")
            tokens.append(_Token("qident", text.lower(), sql[i:end], i))
            i = end
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            j = i + 1
            while j < n and sql[j].isascii() and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            if j < n and sql[j] == "'" and sql[i:j].upper() in ("X", "N", "B", "E", "U", "_UTF8", "_UTF8MB4", "_BINARY"):
                raise _refuse("prefixed string literals are not allowed")
            tokens.append(_Token("word", sql[i:j].upper(), sql[i:j], i))
            i = j
        elif ch.isascii() and (ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isdigit())):
            j = i + 1
            while j < n and sql[j].isascii() and (sql[j].isalnum() or sql[j] == "."):
                if sql[j] in "eE" and j + 1 < n and sql[j + 1] in "+-":
                    j += 1
                j += 1
            tokens.append(_Token("number", sql[i:j], sql[i:j], i))
            i = j
        elif ch in _OPERATOR_CHARS:
            tokens.append(_Token("op", ch, ch, i))
            i += 1
        elif not ch.isascii():
            raise _refuse(f"non-ASCII character {ch!r} outside a string literal")
        else:
            raise _refuse(f"character {ch!r} is not allowed (no parameters, variables or escapes)")
    return tokens


def _quoted(sql: str, start: int, close: str) -> tuple[int, str]:
    """End index and content of a quoted run starting at ``start`` (doubling escapes the quote)."""
    i, n, out = start + 1, len(sql), []
    while i < n:
        ch = sql[i]
        if ch == "\\":
            raise _refuse("backslashes in quoted text are not allowed (dialects read them differently)")
        if ch == close:
            if i + 1 < n and sql[i + 1] == close and close != "]":
                out.append(ch)
                i += 2
                continue
            return i + 1, "".join(out)
        out.append(ch)
        i += 1
    raise _refuse("unterminated quoted text")


# --- validation --------------------------------------------------------------------------------
@dataclass
class _Frame:
    kind: str  # query | expr
    in_from: bool = False
    ctes: set[str] = field(default_factory=set)


def _is_system(name: str) -> bool:
    low = name.lower()
    return low in SYSTEM_NAMES or low.startswith(SYSTEM_PREFIXES)


def validate_select(sql: str, *, allowed_tables: Iterable[str], dialect: str, max_rows: int = 200) -> CheckedSql:
    """Accept one read-only query over allow-listed tables, or refuse it.

    Parameters
    ----------
    sql : str
        The statement the model wrote.
    allowed_tables : iterable of str
        Tables it may read (case-insensitive, unqualified).
    dialect : {'sqlite', 'postgresql', 'mysql'}
        How to read double quotes and brackets.
    max_rows : int
        Row cap: a top-level ``LIMIT`` above it is refused; without one, ``LIMIT max_rows + 1``
        is appended (the extra row tells that the result was cut).

    Returns
    -------
    CheckedSql

    Raises
    ------
    QueryRefusedError
        With the reason, e.g. ``query refused: INSERT is not allowed (read-only SELECT/WITH only)``.
    """
    if dialect not in _DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}")
    allowed = {t.lower() for t in allowed_tables}
    if not isinstance(sql, str) or not sql.strip():
        raise _refuse("empty statement")
    if len(sql) > 20_000:
        raise _refuse("statement longer than 20000 characters")
    _check_characters(sql)
    tokens = _tokenize(sql, dialect)
    while tokens and tokens[-1].text == ";":
        tokens.pop()
    if not tokens:
        raise _refuse("empty statement")
    if any(t.text == ";" for t in tokens):
        raise _refuse("more than one statement")
    if tokens[0].kind != "word" or tokens[0].text not in ("SELECT", "WITH"):
        raise _refuse(f"only SELECT or WITH queries are allowed, not {tokens[0].raw[:20]!r}")
    for idx, tok in enumerate(tokens):
        if tok.kind in ("word", "qident") and _is_system(tok.text):
            raise _refuse(f"system table or schema {tok.raw!r} is not allowed")
        if tok.kind != "word":
            continue
        if tok.text in DENIED_KEYWORDS:
            raise _refuse(f"{tok.text} is not allowed (read-only SELECT/WITH only)")
        called = idx + 1 < len(tokens) and tokens[idx + 1].text == "("
        if tok.text in DENIED_FUNCTIONS and (called or tok.text not in _CALL_ONLY):
            raise _refuse(f"{tok.text}() is not allowed")
    _check_calls(tokens, dialect)
    tables = _check_tables(tokens, allowed, dialect)
    text = _render(sql, tokens)
    text = _apply_limit(text, tokens, max_rows)
    return CheckedSql(sql=text, tables=tuple(sorted(tables)))


def sql_tokens(sql: str, dialect: str) -> list[tuple[str, str]]:
    """``(kind, text)`` of every token of ``sql`` as the validator reads it (comments dropped):
    kinds ``word`` (upper-case), ``qident`` (lower-case, unquoted), ``string``, ``number``, ``op``.

    Raises
    ------
    QueryRefusedError
        What :func:`validate_select` refuses while tokenizing.
    """
    _check_characters(sql)
    return [(t.kind, t.text) for t in _tokenize(sql, dialect)]


def _is_op(tok: _Token | None, text: str) -> bool:
    return tok is not None and tok.kind == "op" and tok.text == text


def _closing(tokens: Sequence[_Token], open_at: int) -> int:
    """Index of the ")" matching the "(" at ``open_at`` (len(tokens) when unbalanced)."""
    depth = 0
    for j in range(open_at, len(tokens)):
        if _is_op(tokens[j], "("):
            depth += 1
        elif _is_op(tokens[j], ")"):
            depth -= 1
            if depth == 0:
                return j
    return len(tokens)


def _check_calls(tokens: Sequence[_Token], dialect: str) -> None:
    """Refuse calls of functions, casts to types and typed literals outside the dialect's allow-lists."""
    functions, types = ALLOWED_FUNCTIONS[dialect], ALLOWED_TYPES[dialect]
    cast_as: set[int] = set()  # indices of the AS inside CAST(... AS type)
    for i, tok in enumerate(tokens):
        if tok.kind == "string" and i + 1 < len(tokens) and tokens[i + 1].kind == "string":
            raise _refuse("adjacent string literals are not allowed (MySQL joins them, a filter-evasion trick)")
        if tok.kind not in ("word", "qident"):
            continue
        name = tok.text.upper()
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        is_type_position = (i - 1 in cast_as) or (_is_op(prev, ":") and i >= 2 and _is_op(tokens[i - 2], ":"))
        if is_type_position:
            if name not in types:
                raise _refuse(f"cast to {tok.raw[:40]!r} is not allowed (number, text, boolean, date and time types only)")
            continue
        # PostgreSQL reads `name 'text'` as a typed literal (the type's input function runs);
        # a quoted name before a string is never needed in any dialect
        if nxt is not None and nxt.kind == "string" and name not in types and (
                tok.kind == "qident" or (dialect == "postgresql" and name not in LITERAL_PREFIX_KEYWORDS)):
            raise _refuse(f"typed literal {tok.raw[:40]} '...' is not allowed")
        if not _is_op(nxt, "("):
            continue
        if tok.kind == "word" and name in PAREN_KEYWORDS:
            continue
        close = _closing(tokens, i + 1)
        after = tokens[close + 1] if close + 1 < len(tokens) else None
        if after is not None and after.text == "AS" and after.kind == "word":
            continue  # WITH name(col, ...) AS (...): a CTE's column list, not a call
        if _is_op(prev, "."):
            raise _refuse(f"qualified function name ...{tok.raw[:40]}() is not allowed")
        if name not in functions:
            raise _refuse(f"function {tok.raw[:40]}() is not allowed in {dialect} queries "
                          "(aggregates, window, text, number and date functions only)")
        if name == "CAST" and tok.kind == "word":
            depth = 0
            for j in range(i + 1, close):
                if _is_op(tokens[j], "("):
                    depth += 1
                elif _is_op(tokens[j], ")"):
                    depth -= 1
                elif depth == 1 and tokens[j].kind == "word" and tokens[j].text == "AS":
                    cast_as.add(j)


def _check_tables(tokens: Sequence[_Token], allowed: set[str], dialect: str) -> set[str]:
    """Walk FROM/JOIN clauses (with nesting and CTE scopes); return the tables read."""
    frames = [_Frame("query")]
    expect_table = False
    used: set[str] = set()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        frame = frames[-1]
        if expect_table:
            expect_table = False
            if tok.text == "(" and tok.kind == "op":
                starts_query = nxt is not None and nxt.kind == "word" and nxt.text in ("SELECT", "WITH")
                frames.append(_Frame("query", in_from=not starts_query))
                expect_table = not starts_query
                i += 1
                continue
            if tok.kind not in ("word", "qident"):
                raise _refuse(f"expected a table name, found {tok.raw[:20]!r}")
            name = tok.text.lower()
            if nxt is not None and nxt.text == "." and nxt.kind == "op":
                raise _refuse(f"schema-qualified table {tok.raw}.{tokens[i + 2].raw if i + 2 < len(tokens) else ''} is not allowed")
            if nxt is not None and nxt.text == "(" and nxt.kind == "op":
                raise _refuse(f"table function {tok.raw}() is not allowed")
            if any(name in f.ctes for f in frames):
                i += 1
                continue
            if dialect == "mysql" and name == "dual":
                i += 1
                continue
            if name not in allowed:
                raise _refuse(f"table {tok.raw!r} is not in the allow-list ({', '.join(sorted(allowed))})")
            used.add(name)
            i += 1
            continue
        if tok.kind == "op" and tok.text == "(":
            starts_query = nxt is not None and nxt.kind == "word" and nxt.text in ("SELECT", "WITH", "VALUES")
            frames.append(_Frame("query" if starts_query else "expr"))
        elif tok.kind == "op" and tok.text == ")":
            if len(frames) == 1:
                raise _refuse("unbalanced parentheses")
            frames.pop()
        elif tok.kind == "word" and tok.text == "WITH":
            i = _collect_ctes(tokens, i + 1, frame)
            continue
        elif frame.kind == "query" and tok.kind == "word":
            if tok.text == "FROM" or tok.text in _JOIN_WORDS:
                frame.in_from = True
                expect_table = True
            elif tok.text in _CLAUSE_END:
                frame.in_from = False
        elif frame.kind == "query" and frame.in_from and tok.kind == "op" and tok.text == ",":
            expect_table = True
        i += 1
    if expect_table:
        raise _refuse("a table name is missing at the end")
    if len(frames) != 1:
        raise _refuse("unbalanced parentheses")
    return used


def _collect_ctes(tokens: Sequence[_Token], i: int, frame: _Frame) -> int:
    """Record the CTE names of a WITH clause in ``frame``; return the index of its first CTE body.

    The CTE bodies themselves are walked by the caller like any subquery (so their tables are
    checked); only the names and the optional column lists are consumed here.
    """
    names: list[str] = []
    j = i
    while True:
        if j >= len(tokens) or tokens[j].kind not in ("word", "qident"):
            raise _refuse("malformed WITH clause")
        names.append(tokens[j].text.lower())
        j += 1
        if j < len(tokens) and tokens[j].text == "(" and tokens[j].kind == "op":
            depth = 0
            while j < len(tokens):
                if tokens[j].text == "(" and tokens[j].kind == "op":
                    depth += 1
                elif tokens[j].text == ")" and tokens[j].kind == "op":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            j += 1
        if j >= len(tokens) or tokens[j].text != "AS":
            raise _refuse("malformed WITH clause (expected AS)")
        j += 1
        while j < len(tokens) and tokens[j].text in ("NOT", "MATERIALIZED"):
            j += 1
        if j >= len(tokens) or tokens[j].text != "(":
            raise _refuse("malformed WITH clause (expected a parenthesised query)")
        body_start = j
        depth = 0
        while j < len(tokens):
            if tokens[j].text == "(" and tokens[j].kind == "op":
                depth += 1
            elif tokens[j].text == ")" and tokens[j].kind == "op":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        j += 1
        if j < len(tokens) and tokens[j].text == "," and tokens[j].kind == "op":
            j += 1
            continue
        break
    frame.ctes.update(names)
    return body_start


def _render(sql: str, tokens: Sequence[_Token]) -> str:
    """The statement rebuilt from its tokens (comments and the trailing ``;`` dropped)."""
    out: list[str] = []
    prev_end = None
    for tok in tokens:
        if prev_end is not None:
            gap = sql[prev_end:tok.pos]
            out.append("\n" if "\n" in gap else (" " if gap else ""))
        out.append(tok.raw)
        prev_end = tok.pos + len(tok.raw)
    return "".join(out)


def _apply_limit(text: str, tokens: Sequence[_Token], max_rows: int) -> str:
    depth = 0
    limit_at = None
    for idx, tok in enumerate(tokens):
        if tok.kind == "op" and tok.text == "(":
            depth += 1
        elif tok.kind == "op" and tok.text == ")":
            depth -= 1
        elif depth == 0 and tok.kind == "word" and tok.text == "LIMIT":
            limit_at = idx
    if limit_at is None:
        return f"{text}\nLIMIT {max_rows + 1}"
    rest = list(tokens[limit_at + 1:])
    numbers = [t for t in rest if t.kind == "number"]
    shape_ok = rest and rest[0].kind == "number" and all(
        t.kind == "number" or (t.kind == "op" and t.text == ",") or (t.kind == "word" and t.text == "OFFSET")
        for t in rest)
    if not shape_ok:
        raise _refuse("LIMIT must be a plain number")
    count_tok = numbers[1] if len(rest) >= 3 and rest[1].text == "," else numbers[0]
    try:
        count = int(count_tok.text)
    except ValueError:
        raise _refuse("LIMIT must be a plain number") from None
    if count > max_rows:
        raise _refuse(f"LIMIT {count} is above the cap of {max_rows} rows (aggregate, or narrow the query)")
    return text


# --- result capping ----------------------------------------------------------------------------
def cap_rows(sql: str, columns: Sequence[str], raw_rows: Sequence[Sequence[Any]], *, limits: SqlLimits,
             elapsed_s: float, tables: tuple[str, ...] = ()) -> SqlResult:
    """Apply the row and byte caps to fetched rows (``raw_rows`` may hold one row too many)."""
    rows: list[dict[str, Any]] = []
    truncated = None
    size = 2
    for raw in raw_rows:
        if len(rows) >= limits.max_rows:
            truncated = f"row cap {limits.max_rows}"
            break
        row = {col: json_value(v) for col, v in zip(columns, raw, strict=False)}
        size += len(json.dumps(row, ensure_ascii=False, default=str)) + 1
        if size > limits.max_bytes:
            truncated = f"byte cap {limits.max_bytes}"
            break
        rows.append(row)
    return SqlResult(sql=sql, columns=tuple(columns), rows=tuple(rows), truncated=truncated,
                     elapsed_s=round(elapsed_s, 4), tables=tables)


# --- SQLite ------------------------------------------------------------------------------------
_SQLITE_FUNCTIONS = frozenset(f.lower() for f in ALLOWED_FUNCTIONS["sqlite"])


def _sqlite_authorizer(allowed: set[str]):
    def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _source: str | None) -> int:
        if action == sqlite3.SQLITE_SELECT:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            return sqlite3.SQLITE_OK if (arg1 or "").lower() in allowed else sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION:
            return sqlite3.SQLITE_OK if (arg2 or "").lower() in _SQLITE_FUNCTIONS else sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_DENY

    return authorize


def open_sqlite_readonly(path: str | Path, *, allowed_tables: Iterable[str], limits: SqlLimits) -> sqlite3.Connection:
    """Open a SQLite file for guarded reading.

    ``mode=ro`` (the file cannot be written through this connection, and it is never created),
    ``PRAGMA query_only``, a length cap on values, and an authorizer that allows only SELECT,
    reads of ``allowed_tables`` and the functions of ``ALLOWED_FUNCTIONS["sqlite"]`` (so ATTACH,
    PRAGMA, writes, recursive CTEs and reads of ``sqlite_master`` are denied by SQLite itself).

    Raises
    ------
    StoreError
        The file does not exist or cannot be opened.
    """
    p = Path(path)
    if not p.is_file():
        raise StoreError(f"store {p} does not exist")
    from core.store.engine import connect_sqlite_readonly

    try:
        conn = connect_sqlite_readonly(p.resolve(), timeout_s=limits.timeout_s)
        conn.isolation_level = None
        conn.execute("PRAGMA query_only = ON")
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(1_000_000, limits.max_bytes * 4))
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {p} read-only: {exc}") from None
    conn.set_authorizer(_sqlite_authorizer({t.lower() for t in allowed_tables}))
    return conn


def run_sqlite_readonly(path: str | Path, sql: str, *, allowed_tables: Iterable[str],
                        limits: SqlLimits = SqlLimits()) -> SqlResult:
    """Validate ``sql`` and run it on a guarded read-only connection to the SQLite file ``path``.

    Raises
    ------
    QueryRefusedError
        Refused by :func:`validate_select` or by the authorizer, or stopped by the timeout.
    StoreError
        The query failed for another reason (unknown column, syntax error...).
    """
    allowed = tuple(allowed_tables)
    checked = validate_select(sql, allowed_tables=allowed, dialect="sqlite", max_rows=limits.max_rows)
    conn = open_sqlite_readonly(path, allowed_tables=allowed, limits=limits)
    started = time.monotonic()
    deadline = started + limits.timeout_s
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
    try:
        cur = conn.execute(checked.sql)
        columns = [d[0] for d in cur.description or ()]
        raw = cur.fetchmany(limits.max_rows + 1)
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "interrupted" in text:
            raise _refuse(f"stopped after the {limits.timeout_s:g} s statement timeout") from None
        if "not authorized" in text or "prohibited" in text:
            raise _refuse(f"denied by the read-only store connection ({text})") from None
        raise StoreError(f"query failed: {text}") from None
    finally:
        conn.close()
    return cap_rows(checked.sql, columns, raw, limits=limits, elapsed_s=time.monotonic() - started,
                    tables=checked.tables)


# --- PostgreSQL --------------------------------------------------------------------------------
def run_postgres_readonly(engine, sql: str, *, allowed_tables: Iterable[str],
                          limits: SqlLimits = SqlLimits()) -> SqlResult:
    """Validate ``sql`` and run it with :func:`execute_postgres_readonly`.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The result store's PostgreSQL engine; the transaction is always rolled back.

    Raises
    ------
    QueryRefusedError, StoreError
    """
    checked = validate_select(sql, allowed_tables=allowed_tables, dialect="postgresql", max_rows=limits.max_rows)
    return execute_postgres_readonly(engine, checked, limits=limits)


def execute_postgres_readonly(engine, checked: CheckedSql, *, limits: SqlLimits = SqlLimits()) -> SqlResult:
    """Run a validated statement in a ``READ ONLY`` transaction, as the chat's role, with a timeout.

    The transaction is ``READ ONLY`` with ``SET LOCAL statement_timeout``; its ``search_path``
    is the store's schema alone; it runs as :data:`core.store.sqlrole.SQL_ROLE` (``SET LOCAL
    ROLE``), which may read only the allow-listed tables, whenever the store user may take that
    role (else as the store user, with a warning logged once). Always rolled back.

    Raises
    ------
    QueryRefusedError
        Stopped by the timeout, or denied by the transaction or the role's privileges.
    StoreError
        The query failed for another reason.
    """
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from core.store.sqlrole import usable_role

    started = time.monotonic()
    try:
        with engine.connect() as conn:
            trans = conn.begin()
            try:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(limits.timeout_s * 1000)}")
                role = usable_role(conn)
                schema = conn.exec_driver_sql("SELECT current_schema()").scalar() or "public"
                conn.exec_driver_sql("SELECT set_config('search_path', %(s)s, true)", {"s": _pg_ident(schema)})
                if role is not None:
                    conn.exec_driver_sql(f"SET LOCAL ROLE {_pg_ident(role)}")
                # the driver formats the statement with an empty parameter list: double a literal %
                result = conn.exec_driver_sql(checked.sql.replace("%", "%%"))
                columns = list(result.keys())
                raw = result.fetchmany(limits.max_rows + 1)
            finally:
                trans.rollback()
    except DBAPIError as exc:
        text = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        if "statement timeout" in text or "canceling statement" in text:
            raise _refuse(f"stopped after the {limits.timeout_s:g} s statement timeout") from None
        if "read-only transaction" in text:
            raise _refuse("denied by the read-only transaction") from None
        if "permission denied" in text:
            raise _refuse(f"denied by the database role ({text})") from None
        raise StoreError(f"query failed: {text}") from None
    except SQLAlchemyError as exc:
        raise StoreError(f"query failed: {type(exc).__name__}") from None
    return cap_rows(checked.sql, columns, raw, limits=limits, elapsed_s=time.monotonic() - started,
                    tables=checked.tables)


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- MySQL / MariaDB (ViciDial) ----------------------------------------------------------------
def run_mysql_readonly(session, sql: str, *, allowed_tables: Iterable[str],
                       limits: SqlLimits = SqlLimits()) -> SqlResult:
    """Validate ``sql`` and run it through a read-only ViciDial session.

    Parameters
    ----------
    session : core.vicidial.ViciDialSession
        Opened by :func:`core.vicidial.connect` (``SET SESSION TRANSACTION READ ONLY``, the
        server-side statement cap, no ``LOCAL INFILE``). On MariaDB the statement also gets
        ``SET STATEMENT max_statement_time=<timeout> FOR``.

    Raises
    ------
    QueryRefusedError
        Refused by :func:`validate_select`.
    ViciDialError
        The server refused or failed the query (including its time cap).
    """
    checked = validate_select(sql, allowed_tables=allowed_tables, dialect="mysql", max_rows=limits.max_rows)
    text = checked.sql
    if getattr(session, "flavor", "") == "mariadb":
        text = f"SET STATEMENT max_statement_time={limits.timeout_s:g} FOR {text}"
    started = time.monotonic()
    # pymysql formats the statement with the (empty) argument tuple, so a literal % must be doubled
    rows = session.query(text.replace("%", "%%"), ())
    columns = list(rows[0].keys()) if rows else []
    raw = [tuple(r.values()) for r in rows[: limits.max_rows + 1]]
    return cap_rows(checked.sql, columns, raw, limits=limits, elapsed_s=time.monotonic() - started,
                    tables=checked.tables)

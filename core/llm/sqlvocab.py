"""The vocabulary the chat's SQL may use, per dialect: allow-lists, not deny-lists.

A deny-list of dangerous functions is never complete: PostgreSQL alone has functions that run
SQL given as a string (``ts_stat``, ``query_to_xml``, ``xpath`` over ``query_to_xml``...), that
dump whole tables (``table_to_xml_and_xmlschema``), that sleep, lock, read files or reveal the
server. So :func:`core.llm.guardrails.validate_select` accepts a called name only when it is in
:data:`ALLOWED_FUNCTIONS` for the dialect, a cast only to a type in :data:`ALLOWED_TYPES`, and
a parenthesis after a word only when the word is SQL syntax (:data:`PAREN_KEYWORDS`). The
lists hold what analysts' questions need: aggregates, window functions, arithmetic, text and
date handling. Functions that build arbitrarily large values (``repeat``, ``lpad``, ``space``,
``randomblob``, ``zeroblob``) are left out.

The deny-lists below stay as a second check on words that are not calls (``CURRENT_USER``,
system catalogs, write keywords).
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_COMMON_FUNCTIONS = _words("""
    COUNT SUM AVG MIN MAX ABS ROUND COALESCE NULLIF CAST LOWER UPPER LENGTH REPLACE TRIM LTRIM RTRIM
    ROW_NUMBER RANK DENSE_RANK NTILE LAG LEAD FIRST_VALUE LAST_VALUE PERCENT_RANK CUME_DIST
    SUBSTR
""")
#: Functions the model's SQL may call, per dialect (upper-case).
ALLOWED_FUNCTIONS: dict[str, frozenset[str]] = {
    "sqlite": _COMMON_FUNCTIONS | _words("""
        TOTAL GROUP_CONCAT IFNULL IIF INSTR SUBSTRING DATE TIME DATETIME JULIANDAY STRFTIME UNIXEPOCH
        LIKE GLOB TYPEOF SIGN CEIL CEILING FLOOR SQRT POWER POW LN LOG LOG10 LOG2 EXP MOD
        TRUNC NTH_VALUE JSON_EXTRACT CHAR HEX UNICODE QUOTE
    """),
    "postgresql": _COMMON_FUNCTIONS | _words("""
        STRING_AGG ARRAY_AGG BOOL_AND BOOL_OR EVERY STDDEV STDDEV_POP STDDEV_SAMP VARIANCE VAR_POP VAR_SAMP
        PERCENTILE_CONT PERCENTILE_DISC MODE CORR COVAR_POP COVAR_SAMP REGR_SLOPE REGR_INTERCEPT
        CONCAT CONCAT_WS LEFT RIGHT POSITION STRPOS SPLIT_PART SUBSTRING INITCAP BTRIM CHAR_LENGTH
        GREATEST LEAST CEIL CEILING FLOOR SQRT POWER LN LOG LOG10 EXP MOD SIGN TRUNC DIV WIDTH_BUCKET
        DATE_TRUNC DATE_PART EXTRACT TO_CHAR TO_DATE TO_TIMESTAMP AGE MAKE_DATE MAKE_INTERVAL
        NOW NTH_VALUE CARDINALITY ARRAY_LENGTH
    """),
    "mysql": _COMMON_FUNCTIONS | _words("""
        GROUP_CONCAT IFNULL IF INSTR LOCATE SUBSTRING SUBSTRING_INDEX CONCAT CONCAT_WS LEFT RIGHT
        CHAR_LENGTH GREATEST LEAST CEIL CEILING FLOOR SQRT POWER POW LN LOG LOG10 LOG2 EXP MOD SIGN
        TRUNCATE STD STDDEV STDDEV_POP STDDEV_SAMP VARIANCE VAR_POP VAR_SAMP BIT_AND BIT_OR
        DATE TIME DATE_FORMAT TIME_FORMAT DATE_ADD DATE_SUB ADDDATE SUBDATE DATEDIFF TIMEDIFF TIMESTAMPDIFF
        TIMESTAMPADD TIME_TO_SEC SEC_TO_TIME UNIX_TIMESTAMP FROM_UNIXTIME STR_TO_DATE EXTRACT YEAR MONTH
        DAY DAYOFMONTH DAYOFWEEK DAYOFYEAR WEEKDAY WEEK HOUR MINUTE SECOND QUARTER MONTHNAME DAYNAME
        LAST_DAY NOW CURDATE CURTIME NTH_VALUE
    """),
}

#: Types a value may be cast to (``CAST(x AS T)``, ``x::T``, ``T 'literal'``).
ALLOWED_TYPES: dict[str, frozenset[str]] = {
    "sqlite": _words("INTEGER INT REAL TEXT NUMERIC FLOAT"),
    "postgresql": _words("""
        INTEGER INT INT4 INT8 BIGINT SMALLINT REAL FLOAT FLOAT8 DOUBLE PRECISION NUMERIC DECIMAL TEXT VARCHAR
        CHAR CHARACTER VARYING BOOLEAN BOOL DATE TIME TIMESTAMP TIMESTAMPTZ INTERVAL WITH WITHOUT ZONE
    """),
    "mysql": _words("SIGNED UNSIGNED INTEGER INT DECIMAL CHAR DATE DATETIME TIME DOUBLE FLOAT"),
}

#: Words that may stand before "(" without being a function call: SQL syntax.
PAREN_KEYWORDS = _words("""
    SELECT FROM JOIN ON USING IN EXISTS ANY SOME ALL AS AND OR NOT WHERE HAVING WHEN THEN ELSE CASE
    BETWEEN LIKE ILIKE IS BY OVER FILTER GROUP VALUES UNION INTERSECT EXCEPT ARRAY ROW DISTINCT
    MATERIALIZED WITH INTERVAL
""")
#: Words that may stand before a string literal in PostgreSQL, where ``name 'text'`` is a typed
#: literal that runs the type's input function (``regclass 'app_secrets'`` probes for a table).
LITERAL_PREFIX_KEYWORDS = _words("""
    SELECT LIKE ILIKE SIMILAR TO THEN ELSE WHEN AND OR NOT IN IS BETWEEN ESCAPE AS BY DISTINCT ALL ANY
    WHERE HAVING ON CASE INTERVAL DATE TIME TIMESTAMP TIMESTAMPTZ
""")

#: Words that never appear in a read-only query we accept (writes, DDL, session and transaction
#: control, file I/O, locking reads, procedural SQL).
DENIED_KEYWORDS = _words("""
    INSERT UPDATE DELETE MERGE UPSERT DROP ALTER CREATE TRUNCATE RENAME ATTACH DETACH PRAGMA
    VACUUM REINDEX ANALYZE OPTIMIZE REPAIR GRANT REVOKE SET CALL EXEC EXECUTE PREPARE DEALLOCATE DECLARE
    HANDLER LOAD INTO OUTFILE DUMPFILE INFILE LOCK UNLOCK FOR SHARE NOWAIT RETURNING COPY LISTEN NOTIFY
    UNLISTEN DO SHOW DESCRIBE EXPLAIN INSTALL UNINSTALL SHUTDOWN KILL FLUSH RESET PURGE CHANGE START BEGIN
    COMMIT ROLLBACK SAVEPOINT RELEASE XA USE CURSOR FETCH TABLE LATERAL ONLY RECURSIVE PROCEDURE TRIGGER
    FUNCTION VIEW INDEX DELAYED AUTHORIZATION OWNER DEFINER GLOBAL PERSIST PERSIST_ONLY IMPORT EXPORT
    BACKUP RESTORE CLONE CHECKPOINT CLUSTER REFRESH DISCARD SECURITY OVERRIDING
""")
#: Functions and SQL value words that sleep, lock, read or write files, load code, or reveal the
#: server's identity: refused even where they are not called (``SELECT CURRENT_USER``).
DENIED_FUNCTIONS = _words("""
    SLEEP BENCHMARK LOAD_FILE GET_LOCK RELEASE_LOCK RELEASE_ALL_LOCKS IS_FREE_LOCK IS_USED_LOCK
    MASTER_POS_WAIT SOURCE_POS_WAIT MASTER_GTID_WAIT WAIT_FOR_EXECUTED_GTID_SET WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS
    LOAD_EXTENSION READFILE WRITEFILE EDIT FTS3_TOKENIZER ZEROBLOB RANDOMBLOB REPEAT SPACE
    LO_IMPORT LO_EXPORT LO_GET LO_PUT LO_FROM_BYTEA DBLINK DBLINK_EXEC SET_CONFIG CURRENT_SETTING
    QUERY_TO_XML QUERY_TO_XML_AND_XMLSCHEMA TABLE_TO_XML TABLE_TO_XML_AND_XMLSCHEMA DATABASE_TO_XML
    CURSOR_TO_XML SCHEMA_TO_XML TS_STAT TS_REWRITE XPATH
    SYS_EXEC SYS_EVAL USER CURRENT_USER SYSTEM_USER SESSION_USER CURRENT_ROLE CURRENT_SCHEMA CURRENT_CATALOG
    DATABASE SCHEMA CONNECTION_ID LAST_INSERT_ID FOUND_ROWS ROW_COUNT NEXTVAL SETVAL
""")
#: Denied functions whose names are also common column names: refused only when called.
CALL_ONLY = frozenset({"USER", "DATABASE", "SCHEMA", "SPACE", "EDIT", "REPEAT"})
#: Catalogs and system schemas, refused wherever they appear.
SYSTEM_NAMES = frozenset("""
    information_schema performance_schema pg_catalog mysql sys sqlite_master sqlite_schema
    sqlite_temp_master sqlite_temp_schema sqlite_sequence temp
""".split())
SYSTEM_PREFIXES = ("pg_", "sqlite_", "innodb_")

"""The FastAPI application behind ``callqa serve``.

:func:`create_app` opens the result store, loads the quality model (``[api] quality``) and
wires the Claude services once; every request reuses them. Endpoints stay thin: validate the
request (:mod:`core.api.schemas`), call one core service, map :class:`~core.errors.CallQAError`
to its ``http_status`` with the body ``{"error": {"type": ..., "message": ...}}``.

Work that blocks (an analysis, a fetch, a Claude call) runs on a thread pool of
``[api] max_concurrency`` threads behind an :class:`asyncio.Semaphore`. Requests beyond that
wait in a bounded queue (``[api] max_queue``, at most ``queue_timeout_s``); past either bound
the answer is 503 with ``Retry-After``. A request body is refused with 413 before any parsing
once it passes ``[api] max_body_bytes``, so neither a flood of requests nor a large body can
exhaust memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import __version__
from core.access.identity import api_key_identity
from core.access.roles import Identity, require
from core.api import ApiSettings
from core.api.claude import ai_analyze_blocking, ask_blocking, investigate_blocking
from core.api.metrics import ApiMetrics, error_reason
from core.api.schemas import (
    MAX_DB_INT,
    MAX_OFFSET,
    AiAnalyzeRequest,
    AiAnalyzeResponse,
    AnalysisDoc,
    AnalyzeRequest,
    AskRequest,
    AskResponse,
    CallsResponse,
    ErrorResponse,
    HealthResponse,
    InvestigateRequest,
    InvestigationDoc,
    LookupKeys,
    ReadyCheck,
    ReadyResponse,
)
from core.api.security import (
    API_KEY_HEADER,
    api_key_scheme,
    api_keys,
    check_path,
    install_access_log_redactor,
    secret_query_parameters,
)
from core.config import Settings
from core.errors import (
    CallNotFoundError,
    CallQAError,
    ConfigError,
    LLMTransientError,
    ParameterError,
    ServerBusyError,
)
from core.jsonable import call_records

log = logging.getLogger("callqa.api")
T = TypeVar("T")

PUBLIC_PATHS = ("/health", "/metrics")
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json")
_STATUS_TYPES = {400: "bad_request", 401: "authentication", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type",
                 422: "validation", 429: "too_many_requests", 503: "server_busy"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text} for status, text in (
        (401, "Missing or wrong X-API-Key."),
        (403, "The key's role does not allow this endpoint."),
        (413, "Request body larger than [api] max_body_bytes."),
        (422, "Malformed JSON or invalid fields."),
        (503, "Server busy (queue full or wait too long; see Retry-After), or a dependency is unavailable."),
    )
}
_ANALYSIS_ERRORS = {
    **_ERRORS,
    400: {"model": ErrorResponse, "description": "Bad input: relative path, unsafe URL, ambiguous lookup, "
                                                 "quality requested while disabled."},
    403: {"model": ErrorResponse, "description": "The path lies outside [api] allowed_roots."},
    404: {"model": ErrorResponse, "description": "The recording, file or call does not exist."},
    502: {"model": ErrorResponse, "description": "ViciDial, the recording server or Claude failed."},
}


# --- JSON ------------------------------------------------------------------------------------
def finite_json(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


class SafeJSONResponse(JSONResponse):
    """Strict JSON (no ``-Infinity``): non-finite numbers become ``null``."""

    def render(self, content: Any) -> bytes:
        return json.dumps(finite_json(content), ensure_ascii=False, allow_nan=False, default=str,
                          separators=(",", ":")).encode("utf-8")


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> SafeJSONResponse:
    return SafeJSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


# --- the work limiter ------------------------------------------------------------------------
class WorkLimiter:
    """At most ``slots`` blocking jobs at once on a private thread pool; a bounded wait queue.

    A slot is freed when the job's thread finishes, not when the waiting request goes away,
    so a client that disconnects cannot push the number of running jobs past ``slots``.
    """

    def __init__(self, *, slots: int, max_queue: int, timeout_s: float, retry_after_s: int,
                 metrics: ApiMetrics) -> None:
        self.slots = slots
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.metrics = metrics
        self._semaphore = asyncio.Semaphore(slots)
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="callqa-work")
        # admitted = running + waiting, counted when run() is entered: a burst arriving in one
        # event-loop turn is counted before any of its acquire() calls has run (the semaphore's
        # own state would still say "free" to all of them)
        self._admitted = 0

    def _report_waiting(self) -> None:
        """``callqa_queue_waiting``: admitted requests beyond the slots (at most ``max_queue``); a
        request that will get a free slot at once is not counted as waiting for one."""
        self.metrics.waiting.set(max(0, self._admitted - self.slots))

    def _busy(self, why: str) -> ServerBusyError:
        self.metrics.rejected.inc()
        return ServerBusyError(f"server busy: {why}; retry in {self.retry_after_s} s",
                               retry_after_s=self.retry_after_s)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the pool once a slot is free.

        Raises
        ------
        ServerBusyError
            ``slots`` jobs run and ``max_queue`` wait already, or no slot freed up within
            ``timeout_s``.
        """
        if self._admitted >= self.slots + self.max_queue:
            running = min(self._admitted, self.slots)
            raise self._busy(f"{running} analyses running and {self._admitted - running} waiting ([api] max_queue)")
        self._admitted += 1
        self._report_waiting()
        try:
            await asyncio.wait_for(self._semaphore.acquire(), timeout=self.timeout_s)
        except TimeoutError:
            self._admitted -= 1
            self._report_waiting()
            raise self._busy(f"no work slot freed up within {self.timeout_s:g} s") from None
        except BaseException:
            self._admitted -= 1
            self._report_waiting()
            raise
        self.metrics.inflight.inc()
        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _f: self._release())
        return await asyncio.shield(future)

    def _release(self) -> None:
        self._admitted -= 1
        self._report_waiting()
        self.metrics.inflight.dec()
        self._semaphore.release()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# --- state -----------------------------------------------------------------------------------
@dataclass
class ApiState:
    """What the endpoints share: configuration, store, models, Claude services, metrics."""

    settings: Settings
    config: ApiSettings
    store_url: str
    store: Any
    roots: tuple[Path, ...]
    metrics: ApiMetrics
    quality_model: Any = None
    llm: Any = None
    limiter: WorkLimiter | None = None
    route_paths: frozenset[str] = frozenset()
    closers: list[Callable[[], None]] = field(default_factory=list)
    keys: list[tuple[str, str, str]] = field(default_factory=list, repr=False)  # (name, role, key)

    def trail(self, who: Identity):
        """The audit trail of a request by ``who``."""
        from core.audit import AuditTrail

        return AuditTrail(self.store, who, "api")

    def quality_for(self, wanted: bool | None) -> Any:
        """The model to score with: None when quality is off for this request."""
        if wanted is None:
            wanted = self.config.quality
        if not wanted:
            return None
        if self.quality_model is None:
            raise ConfigError('quality scoring is off on this server ([api] quality = false); send "quality": false')
        return self.quality_model

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # closing must not hide the other resources
                log.warning("closing an API resource failed", exc_info=True)
        self.closers.clear()


def _build_state(settings: Settings, config: ApiSettings, store_url: str | None) -> ApiState:
    from core.llm.adapters import build_services
    from core.store import open_store

    url = settings.store_url(store_url)
    store = open_store(url)
    metrics = ApiMetrics()
    from core.queue.metrics import QueueCollector
    from core.queue.settings import QueueSettings

    # queue depth and worker throughput (broker + shared store); only store gauges without a broker
    metrics.registry.register(QueueCollector(QueueSettings.from_settings(settings), url))
    from core.alerts.metrics import AlertCollector
    from core.alerts.settings import AlertSettings

    # alert rule values and states, as the last check stored them (deploy/prometheus/callqa-alerts.yml)
    metrics.registry.register(AlertCollector(AlertSettings.from_settings(settings), store))
    from core.access.settings import AccessSettings

    state = ApiState(settings=settings, config=config, store_url=url, store=store, roots=config.roots(settings),
                     metrics=metrics, keys=api_keys(config, AccessSettings.from_settings(settings)))
    state.closers.append(store.close)
    try:
        from core.audio.vad import get_vad

        get_vad()  # the process-wide Silero session: loaded now, not by the first request
        if config.quality:
            from core.quality.manager import get_quality_model

            state.quality_model = get_quality_model(settings)
        state.llm = build_services(settings, store_url=url)
        state.closers.append(state.llm.close)
        if state.llm.claude.configured:
            state.llm.client()  # built once here; the SDK client is thread-safe
    except BaseException:
        state.close()
        raise
    return state


# --- the guard: auth, body size, request metrics ---------------------------------------------
def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path") or ""
    if root and path.startswith(root + "/"):
        return path[len(root):]
    return path


class Guard:
    """ASGI middleware in front of every route.

    0. A query string carrying a key-like parameter is refused (400), whatever the path.
    1. Requests other than ``/health``, ``/metrics`` (and the docs when enabled) need an API
       key; without one the answer is 401 before the body is read. The key's identity (its
       name and role) goes to ``request.state.identity`` for the endpoints' role checks; with
       no key configured (loopback only) every request is the local admin.
    2. The body is read up to ``max_body_bytes`` (refused early from ``Content-Length``) and
       replayed to the app, so nothing parses an oversized body.
    3. Every answered request is counted by route template and status.
    """

    def __init__(self, app: ASGIApp, *, state: ApiState) -> None:
        self.app = app
        self.state = state
        public = set(PUBLIC_PATHS)
        if state.config.docs:
            public.update(DOCS_PATHS)
        self.public = frozenset(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self._handle(scope, receive, send_counted)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or self._label(scope, status[0])
            self.state.metrics.record_request(label, status[0], time.perf_counter() - started)

    def _label(self, scope: Scope, status: int) -> str:
        """The route label of a request answered before routing (401, 413): its path if it is a route."""
        if status == 401:
            return "unauthenticated"
        path = _route_path(scope)
        return path if path in self.state.route_paths else "other"

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _route_path(scope)
        config = self.state.config
        secrets_in_url = secret_query_parameters(scope.get("query_string", b""))
        if secrets_in_url:  # refused outright, key or not: URLs end up in logs and histories
            await error_response(400, "bad_request", f"send the API key in the {API_KEY_HEADER} header; "
                                 "credentials in the URL are refused")(scope, receive, send)
            return
        remote = (scope.get("client") or (None,))[0]
        if path not in self.public:
            if self.state.keys:
                who = api_key_identity(self.state.keys, _header(scope, b"x-api-key"), remote=remote)
                if who is None:
                    await error_response(401, "authentication", f"missing or wrong {API_KEY_HEADER} header")(
                        scope, receive, send)
                    return
            else:
                who = Identity(name="local", role="admin", source="open", remote=remote)
            scope.setdefault("state", {})["identity"] = who
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = config.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await error_response(400, "bad_request", "invalid Content-Length header")(scope, receive, send)
                return
            if int(declared) > limit:
                await self._too_large(scope, receive, send, limit)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, receive, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(413, "body_too_large", f"request body larger than {limit} bytes "
                                  "([api] max_body_bytes)", headers={"Connection": "close"})
        await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


# --- blocking work (runs on the limiter's threads) --------------------------------------------
def _resolve_lookup(settings: Settings, keys: LookupKeys) -> int:
    """The one ViciDial recording the lookup keys match."""
    from core.vicidial import LookupFilters, search_recordings

    filters = LookupFilters(**keys.model_dump(exclude_none=True))
    frame = search_recordings(settings, filters, limit=6)
    ids = list(dict.fromkeys(int(v) for v in frame["recording_id"].dropna()))
    if not ids:
        raise CallNotFoundError("no ViciDial recording matches the lookup keys")
    if len(ids) > 1:
        shown = ", ".join(str(i) for i in ids[:5]) + (" ..." if len(ids) > 5 else "")
        raise ParameterError(f"the lookup keys match {len(ids)} recordings ({shown}); "
                             "give recording_id or narrower keys")
    return ids[0]


def _fetch_url(settings: Settings, url: str, dest_dir: Path) -> Path:
    """Download ``url`` (recording fetch rules: allowed hosts, size cap, cache) into ``dest_dir``."""
    from core.fetch.cache import FetchCache, place
    from core.fetch.http import fetch_http
    from core.fetch.locations import http_location
    from core.vicidial.settings import RecordingAccess

    access = RecordingAccess.from_settings(settings)
    location = http_location(url, access, what="url")
    download = fetch_http(location, access=access, cache=FetchCache(access.cache_path(), max_bytes=access.cache_max_bytes))
    return place(download.path, dest_dir / location.leaf)


def _ensure(state: ApiState, request: AnalyzeRequest, model: Any, path: Path | None) -> tuple[dict[str, Any], bool]:
    from core.analysis_service import Models, analyze_or_reuse, call_item
    from core.runtime import run_tmp_dir
    from core.work import WorkItem, path_item

    def stored(item: WorkItem) -> tuple[dict[str, Any], bool]:
        if request.agent is not None:  # the voices come from the store, for this agent
            item = dataclasses.replace(item, extras={**item.extras, "agent_user": request.agent})
        result = analyze_or_reuse(item, state.store, Models(quality=model), state.settings, layout=request.layout)
        return result.document, result.reused

    if path is not None:
        return stored(call_item(state.settings, path=path, roots=state.roots))
    if request.url is not None:
        with run_tmp_dir(state.settings, "api-url") as tmp:
            local = _fetch_url(state.settings, request.url, tmp)
            return stored(path_item(local, kind="file", ref=request.url))
    recording_id = request.recording_id
    if recording_id is None:
        assert request.lookup is not None  # the schema requires one source
        recording_id = _resolve_lookup(state.settings, request.lookup)
    return stored(call_item(state.settings, recording_id=recording_id))


def analyze_blocking(state: ApiState, request: AnalyzeRequest) -> tuple[dict[str, Any], bool]:
    """Analyse (or read from the store) the call the request names; count it in the metrics."""
    model = state.quality_for(request.quality)
    # a refused path or quality flag is a bad request, not a failed analysis: checked before counting
    path = check_path(request.path, state.roots) if request.path is not None else None
    started = time.perf_counter()
    try:
        doc, cached = _ensure(state, request, model, path)
    except Exception as exc:
        state.metrics.record_failure(exc)
        raise
    state.metrics.record_analysis(doc, cached=cached, seconds=time.perf_counter() - started)
    return doc, cached


def ready_checks(state: ApiState) -> list[dict[str, str]]:
    """Store, weights, ViciDial and Claude, each ``ok``, ``fail`` or ``skipped``."""
    checks: list[dict[str, str]] = []

    def check(name: str, fn: Callable[[], tuple[str, str]]) -> None:
        try:
            status, detail = fn()
        except CallQAError as exc:
            status, detail = "fail", str(exc)
        checks.append({"name": name, "status": status, "detail": detail})

    # states, not locations: file paths and store URLs stay in `callqa doctor` on the machine itself
    def store() -> tuple[str, str]:
        state.store.check_schema()
        return "ok", f"{state.store.dialect} store reachable, schema current ({state.store.revision()})"

    def weights() -> tuple[str, str]:
        from core.quality.manager import WEIGHTS_SHA256, sha256_of, weights_path

        if not state.config.quality:
            return "skipped", "quality scoring is off ([api] quality = false)"
        path = weights_path(state.settings)
        try:
            ok = sha256_of(path) == WEIGHTS_SHA256
        except OSError as exc:
            return "fail", f"NISQA weights cannot be read ({exc.strerror})"
        return ("ok", "NISQA weights present (sha256 ok)") if ok else (
            "fail", "NISQA weights: sha256 mismatch (corrupt or replaced)")

    def vicidial() -> tuple[str, str]:
        from core.vicidial import ViciDialSettings, connect

        vs = ViciDialSettings.from_settings(state.settings)
        if not vs.configured:
            return "skipped", "not configured (folders and URLs only)"
        with connect(vs) as session:
            flavor = session.flavor
        return "ok", f"reachable ({flavor}, read-only session)"

    def claude() -> tuple[str, str]:
        claude_settings = state.llm.claude
        if not claude_settings.configured:
            return "skipped", "no Anthropic API key: AI endpoints answer 503"
        return "ok", f"configured ({claude_settings.summary_model}, {claude_settings.chat_model})"

    for name, fn in (("store", store), ("weights", weights), ("vicidial", vicidial), ("claude", claude)):
        check(name, fn)
    return checks


# --- the app ---------------------------------------------------------------------------------
def create_app(settings: Settings, *, store_url: str | None = None) -> FastAPI:
    """Build the API: open the store, load the models, wire the routes.

    Parameters
    ----------
    settings : Settings
        The loaded configuration (``[api]``, ``[store]``, ``[vicidial]``, ``[claude]``...).
    store_url : str, optional
        Overrides ``CALLQA_STORE`` / ``[store] url`` (the CLI's ``--store``).

    Raises
    ------
    ConfigError, StoreError, ModelUnavailableError
        Bad ``[api]`` settings, an unreachable store, missing or corrupt weights (when
        ``[api] quality`` is on): the server does not start half-configured.
    """
    config = ApiSettings.from_settings(settings)
    state = _build_state(settings, config, store_url)
    limiter = WorkLimiter(slots=config.max_concurrency, max_queue=config.max_queue,
                          timeout_s=config.queue_timeout_s, retry_after_s=config.retry_after_s, metrics=state.metrics)
    state.limiter = limiter
    state.closers.append(limiter.close)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("callqa API ready: store %s, quality %s, auth %s, %d work slots, queue %d",
                 state.store.display_url, "on" if state.quality_model is not None else "off",
                 f"{len(state.keys)} key(s)" if state.keys else "OFF (loopback only)", config.max_concurrency,
                 config.max_queue)
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="callqa API",
        version=__version__,
        description=(
            "Call-quality analysis of ViciDial recordings. Every endpoint except `/health` and `/metrics` needs "
            "the `X-API-Key` header. Errors are `{\"error\": {\"type\", \"message\"}}`. Analyses are cached in the "
            "result store; at most `[api] max_concurrency` run at once, others wait in a bounded queue (503 with "
            "`Retry-After` beyond it). Bodies over `[api] max_body_bytes` are refused with 413."
        ),
        lifespan=lifespan,
        docs_url="/docs" if config.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if config.docs else None,
        default_response_class=SafeJSONResponse,
    )
    app.state.api = state
    install_access_log_redactor()  # uvicorn's access log: no query string of a refused request, no secrets
    _install_error_handlers(app)
    app.add_middleware(Guard, state=state)

    @app.api_route("/health", methods=["GET", "HEAD"], response_model=HealthResponse, tags=["operations"],
                   summary="Liveness: the process answers (no checks, no key).")
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["operations"], response_class=Response,
             summary="Prometheus metrics (text exposition; no key).",
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4."}})
    async def metrics() -> Response:
        body, content_type = state.metrics.render()
        return Response(content=body, media_type=content_type)

    def authorize(request: Request, key: str | None = Security(api_key_scheme)) -> None:
        """The Guard checked the key; this only declares the header in the OpenAPI schema."""

    router = APIRouter(dependencies=[Security(authorize)], responses={401: _ERRORS[401]})

    @router.get("/ready", response_model=ReadyResponse, tags=["operations"],
                responses={503: {"model": ReadyResponse, "description": "A required check failed."}},
                summary="Readiness: store schema, NISQA weights, ViciDial reachability (Claude is informational).")
    def ready() -> SafeJSONResponse:
        checks = ready_checks(state)
        ok = all(c["status"] != "fail" for c in checks)
        body = ReadyResponse(status="ready" if ok else "not_ready",
                             checks=[ReadyCheck.model_validate(c) for c in checks])
        return SafeJSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @router.post("/analyze", response_model=AnalysisDoc, tags=["analysis"], responses=_ANALYSIS_ERRORS,
                 summary="Analyse one call (or return its stored analysis): the `callqa analyze --json` object.")
    async def analyze(body: AnalyzeRequest, request: Request) -> SafeJSONResponse:
        require(_who(request), "analyze", action="analysing calls")
        doc, cached = await limiter.run(analyze_blocking, state, body)
        return SafeJSONResponse(doc, headers={"X-Callqa-Cache": "hit" if cached else "miss"})

    @router.post("/ai-analyze", response_model=AiAnalyzeResponse, tags=["analysis"], responses=_ANALYSIS_ERRORS,
                 summary="Analyse one call and add the Claude (Haiku) executive summary (stored and reused).")
    async def ai_analyze(body: AiAnalyzeRequest, request: Request) -> SafeJSONResponse:
        who = _who(request)
        require(who, "analyze", action="analysing calls")
        require(who, "use_ai", action="AI summaries")
        return SafeJSONResponse(await limiter.run(ai_analyze_blocking, state, body, who))

    @router.post("/investigate", response_model=InvestigationDoc, tags=["analysis"], responses=_ANALYSIS_ERRORS,
                 summary="Root-cause narrative of a stored call from its analysis and the related ViciDial rows.")
    async def investigate(body: InvestigateRequest, request: Request) -> SafeJSONResponse:
        who = _who(request)
        require(who, "use_ai", action="investigations")
        return SafeJSONResponse(await limiter.run(investigate_blocking, state, body.call_id, who))

    @router.post("/ask", response_model=AskResponse, tags=["analysis"], responses=_ANALYSIS_ERRORS,
                 summary="Ask the analyst chat one question (tools over the store and ViciDial, read-only SQL).")
    async def ask_endpoint(body: AskRequest, request: Request) -> SafeJSONResponse:
        who = _who(request)
        require(who, "use_ai", action="the analyst chat")
        return SafeJSONResponse(await limiter.run(ask_blocking, state, body.question, who))

    @router.get("/calls", response_model=CallsResponse, tags=["calls"],
                responses={400: _ANALYSIS_ERRORS[400], 422: _ERRORS[422], 502: _ANALYSIS_ERRORS[502]},
                summary="Stored calls (source=store, like `callqa calls`) or ViciDial recordings "
                        "(source=vicidial, like `callqa lookup`), filtered.")
    def calls(
        request: Request,
        source: Annotated[Literal["store", "vicidial"], Query(description="Where to search.")] = "store",
        since: Annotated[datetime | None, Query(description="Call time from (inclusive, server-local).")] = None,
        until: Annotated[datetime | None, Query(description="Call time before (exclusive).")] = None,
        agent: Annotated[str | None, Query(max_length=40)] = None,
        campaign: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Store only.")] = 0,
        server: Annotated[str | None, Query(max_length=64, description="Store only: server_ip.")] = None,
        carrier: Annotated[str | None, Query(max_length=64, description="Store only.")] = None,
        layout: Annotated[str | None, Query(max_length=20, description="Store only.")] = None,
        finding: Annotated[list[str] | None, Query(description="Store only: finding code(s).")] = None,
        min_mos: Annotated[float | None, Query(ge=1, le=5, description="Store only.")] = None,
        max_mos: Annotated[float | None, Query(ge=1, le=5, description="Store only.")] = None,
        text: Annotated[str | None, Query(max_length=100, description="Store only: part of id/agent/campaign...")] = None,
        order: Annotated[Literal["newest", "oldest", "worst_mos", "most_findings"],
                         Query(description="Store only.")] = "newest",
        phone: Annotated[str | None, Query(max_length=40, description="ViciDial only.")] = None,
        ingroup: Annotated[str | None, Query(max_length=40, description="ViciDial only.")] = None,
        lead_id: Annotated[int | None, Query(ge=0, le=MAX_DB_INT, description="ViciDial only.")] = None,
        uniqueid: Annotated[str | None, Query(max_length=64, description="ViciDial only.")] = None,
        recording_id: Annotated[int | None, Query(ge=0, le=MAX_DB_INT, description="ViciDial only.")] = None,
        status: Annotated[str | None, Query(max_length=20, description="ViciDial only: disposition.")] = None,
        direction: Annotated[Literal["outbound", "inbound", "unlinked"] | None,
                             Query(description="ViciDial only.")] = None,
    ) -> dict[str, Any]:
        store_only = {"offset": offset or None, "server": server, "carrier": carrier, "layout": layout,
                      "finding": finding, "min_mos": min_mos, "max_mos": max_mos, "text": text,
                      "order": None if order == "newest" else order}
        vici_only = {"phone": phone, "ingroup": ingroup, "lead_id": lead_id, "uniqueid": uniqueid,
                     "recording_id": recording_id, "status": status, "direction": direction}
        wrong = [k for k, v in (store_only if source == "vicidial" else vici_only).items() if v is not None]
        if wrong:
            raise ParameterError(f"{', '.join(wrong)} cannot be used with source={source}")
        who = _who(request)
        require(who, "view_calls", action="listing calls")
        if source == "vicidial":
            require(who, "lookup_sources", action="searching ViciDial")
        if source == "vicidial":
            from core.vicidial import LookupFilters, search_recordings, to_records

            lookup = LookupFilters(since=since, until=until, agent=agent, campaign=campaign, phone=phone,
                                   ingroup=ingroup, lead_id=lead_id, uniqueid=uniqueid, recording_id=recording_id,
                                   status=status, direction=direction)
            rows = to_records(search_recordings(state.settings, lookup, limit=limit))
            return {"source": source, "count": len(rows), "total": None, "calls": _shown(who, rows)}
        from core.store.queries import count_calls, list_calls

        filters: dict[str, Any] = {
            "since": since, "until": until, "agent": agent, "campaign": campaign, "server": server, "carrier": carrier,
            "layout": layout, "finding": finding, "min_mos": min_mos, "max_mos": max_mos, "text": text}
        rows = call_records(list_calls(state.store, order=order, limit=limit, offset=offset, **filters))
        return {"source": source, "count": len(rows), "total": count_calls(state.store, **filters),
                "calls": _shown(who, rows)}

    app.include_router(router)
    state.route_paths = frozenset(r.path for r in (*app.routes, *router.routes) if hasattr(r, "path"))
    return app


def _who(request: Request) -> Identity:
    """The identity the Guard attached to the request."""
    return request.state.identity


def _shown(who: Identity, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as ``who`` may see them: unchanged with ``see_personal``, else numbers masked, names dropped."""
    if who.can("see_personal"):
        return rows
    from core.privacy.mask import mask_record

    return [mask_record(r) for r in rows]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CallQAError)
    async def callqa_error(_request: Request, exc: CallQAError) -> SafeJSONResponse:
        headers = None
        retry = getattr(exc, "retry_after_s", None)
        if isinstance(exc, (ServerBusyError, LLMTransientError)) and retry:
            headers = {"Retry-After": str(max(1, math.ceil(retry)))}
        if exc.http_status >= 500:
            log.warning("%s: %s", type(exc).__name__, exc)
        return error_response(exc.http_status, error_reason(exc), str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> SafeJSONResponse:
        return error_response(422, "validation", _validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> SafeJSONResponse:
        kind = _STATUS_TYPES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> SafeJSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal", "internal error (details are in the server log)")


def _validation_message(errors: list[dict[str, Any]] | Any) -> str:
    """One line from pydantic's errors: where and what, never the rejected input itself."""
    parts = []
    for err in list(errors)[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        if err.get("type") == "json_invalid":
            parts.append(f"malformed JSON body ({err.get('ctx', {}).get('error', 'invalid')})")
            continue
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    extra = len(list(errors)) - 5
    return "; ".join(parts) + (f" (and {extra} more)" if extra > 0 else "")

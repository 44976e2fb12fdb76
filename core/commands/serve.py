"""``callqa serve``: the HTTP API on uvicorn (one process; blocking work on a bounded thread pool)."""

from __future__ import annotations

import logging

import click

from core.commands.common import settings_from, store_url_from

# uvicorn's own connection cap, on top of the API's work queue: health checks, metrics scrapes
# and requests being refused still need a few connections beyond max_concurrency + max_queue
CONNECTION_HEADROOM = 32


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: [api] host, else 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port to listen on (default: [api] port, else 8084).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True, help="Server log level (logs go to stderr, i.e. journald under systemd).")
@click.pass_context
def serve_cmd(ctx: click.Context, host: str | None, port: int | None, log_level: str) -> None:
    """Serve the HTTP API: /analyze, /ai-analyze, /investigate, /ask, /calls, /ready, /health, /metrics.

    Clients send the key from CALLQA_API_KEY (role [access] api_key_role, admin) or a named key
    CALLQA_API_KEY_<NAME> ([access.api_keys], each with its role) as the X-API-Key header (not
    needed for /health and /metrics). Without a key the server only starts on a loopback address. The store,
    the NISQA model and the Claude client are loaded once at start; OpenAPI docs are at /docs.

    \b
    Examples:
      CALLQA_API_KEY=$(openssl rand -hex 32) callqa serve --port 8084
      curl -H "X-API-Key: $CALLQA_API_KEY" -d '{"path": "/var/lib/callqa/rec/x-in.wav"}' \\
           -H 'content-type: application/json' http://127.0.0.1:8084/analyze
    """
    import uvicorn

    from core.access.settings import AccessSettings
    from core.api import ApiSettings
    from core.api.app import create_app
    from core.api.security import api_keys, check_bind
    from core.privacy.mask import install_log_masking
    from core.privacy.settings import PrivacySettings

    settings = settings_from(ctx)
    config = ApiSettings.from_settings(settings)
    host = host or config.host
    port = port or config.port
    keyed = bool(api_keys(config, AccessSettings.from_settings(settings)))
    check_bind(host, auth_enabled=keyed)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    privacy = PrivacySettings.from_settings(settings)
    if privacy.mask_logs:
        install_log_masking(visible=privacy.visible_digits)
    app = create_app(settings, store_url=store_url_from(ctx, settings))
    if not keyed:
        logging.getLogger("callqa.api").warning("no API key configured: every endpoint is open to local processes")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=True,
        forwarded_allow_ips=config.forwarded_allow_ips,
        root_path=config.root_path,
        server_header=False,
        limit_concurrency=config.max_concurrency + config.max_queue + CONNECTION_HEADROOM,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=30,
    )


def register(cli: click.Group) -> None:
    cli.add_command(serve_cmd)

"""The shipped deployment files: nginx site, systemd units, Prometheus and Grafana configuration.

- nginx: ``nginx -t`` on a temporary nginx.conf that includes ``deploy/nginx/callqa.conf`` with
  its TLS, htpasswd and log paths rewritten into tmp (a self-signed certificate and an htpasswd
  made here); then the same configuration runs for real in front of two small upstreams to
  show basic auth on the dashboard, the WebSocket upgrade on ``/_stcore/stream``, ``/api/``
  passing ``X-API-Key`` through and the body-size limit.
- systemd: a structural check of every unit (always), plus ``systemd-analyze verify`` when the
  tool exists, with ``/opt/callqa`` rewritten to a tmp tree holding stand-in executables
  (verify insists that ``ExecStart`` binaries exist).
- Prometheus: ``promtool check config``; Grafana: the dashboard JSON's structure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click
import httpx
import pytest

from core.api import DEFAULT_PORT, ApiSettings
from tests.support.http_server import self_signed_cert
from tests.support.mariadb import free_port
from tests.support.shared import PROJECT_ROOT, in_ci

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SITE = PROJECT_ROOT / "deploy" / "nginx" / "callqa.conf"
UNITS = PROJECT_ROOT / "systemd"
SERVICES = ("callqa-api.service", "callqa-dashboard.service", "callqa-scan.service", "callqa-cleanup.service",
            "callqa-worker.service", "callqa-watch.service", "callqa-alerts.service", "callqa-report.service",
            "callqa-retention.service")
TIMERS = ("callqa-scan.timer", "callqa-cleanup.timer", "callqa-alerts.timer", "callqa-report.timer",
          "callqa-retention.timer")
PROMETHEUS_YML = PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_JSON = PROJECT_ROOT / "deploy" / "grafana" / "callqa-dashboard.json"
USER, PASSWORD = "analyst", "correct horse battery staple"


def _require(tool: str) -> str:
    path = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    if path is None:
        message = f"{tool} is not installed (`make setup` installs it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


# --- nginx -----------------------------------------------------------------------------------------
class _Upstream:
    """A stand-in for Streamlit or the API: answers 200 with what it received, as JSON."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[dict] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                seen = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
                upstream.requests.append(seen)
                data = json.dumps({"upstream": upstream.name, **seen}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> _Upstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _htpasswd(path: Path) -> None:
    openssl = _require("openssl")
    hashed = subprocess.run([openssl, "passwd", "-apr1", PASSWORD], capture_output=True, text=True, check=True)
    path.write_text(f"{USER}:{hashed.stdout.strip()}\n")
    path.chmod(0o640)


def _rewrite(text: str, replacements: list[tuple[str, str]]) -> str:
    for old, new in replacements:
        assert old in text, f"{old!r} not found in the shipped file: update this test's rewrite"
        text = text.replace(old, new)
    return text


def _nginx_setup(tmp: Path, *, http_port: int, https_port: int, dashboard_port: int, api_port: int) -> Path:
    """A temp nginx.conf including the shipped site with tmp paths; returns its path."""
    for folder in ("tls", "logs", "temp"):
        (tmp / folder).mkdir(exist_ok=True)
    cert, key = self_signed_cert(tmp / "tls")
    _htpasswd(tmp / "callqa.htpasswd")
    site = _rewrite(SITE.read_text(), [
        ("/etc/callqa/tls/fullchain.pem", str(cert)),
        ("/etc/callqa/tls/privkey.pem", str(key)),
        ("/etc/nginx/callqa.htpasswd", str(tmp / "callqa.htpasswd")),
        ("/var/log/nginx/", f"{tmp / 'logs'}/"),
        ("listen [::]:80;", ""),
        ("listen [::]:443 ssl http2;", ""),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("server 127.0.0.1:8501;", f"server 127.0.0.1:{dashboard_port};"),
        ("server 127.0.0.1:8084;", f"server 127.0.0.1:{api_port};"),
    ])
    (tmp / "callqa.conf").write_text(site)
    temp = tmp / "temp"
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the tmp htpasswd and certificate
    main = tmp / "nginx.conf"
    main.write_text(f"""{user}worker_processes 1;
pid {tmp / 'nginx.pid'};
error_log {tmp / 'logs' / 'error.log'} warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log {tmp / 'logs' / 'access.log'};
    client_body_temp_path {temp / 'body'};
    proxy_temp_path {temp / 'proxy'};
    fastcgi_temp_path {temp / 'fastcgi'};
    uwsgi_temp_path {temp / 'uwsgi'};
    scgi_temp_path {temp / 'scgi'};
    include {tmp / 'callqa.conf'};
}}
""")
    return main


def test_nginx_t_passes_on_the_shipped_site(tmp_path: Path) -> None:
    nginx = _require(NGINX)
    conf = _nginx_setup(tmp_path, http_port=free_port(), https_port=free_port(), dashboard_port=8501, api_port=8084)
    done = subprocess.run([nginx, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


@pytest.fixture
def running_nginx(tmp_path: Path) -> Iterator[tuple[str, int, _Upstream, _Upstream, ssl.SSLContext]]:
    nginx = _require(NGINX)
    with _Upstream("dashboard") as dashboard, _Upstream("api") as api:
        http_port, https_port = free_port(), free_port()
        conf = _nginx_setup(tmp_path, http_port=http_port, https_port=https_port, dashboard_port=dashboard.port,
                            api_port=api.port)
        process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        context = ssl.create_default_context(cafile=str(tmp_path / "tls" / "server.pem"))
        base = f"https://127.0.0.1:{https_port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"nginx exited: {process.stderr.read().decode(errors='replace')}")
                try:
                    httpx.get(f"{base}/_stcore/health", verify=context, timeout=1, trust_env=False)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            yield base, http_port, dashboard, api, context
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_nginx_proxies_dashboard_with_auth_websocket_and_api(running_nginx) -> None:
    base, http_port, dashboard, api, context = running_nginx
    with httpx.Client(base_url=base, verify=context, timeout=10, trust_env=False) as client:
        # the dashboard needs the basic-auth login; TLS with security headers
        denied = client.get("/")
        assert denied.status_code == 401 and 'Basic realm="callqa"' in denied.headers["www-authenticate"]
        assert client.get("/", auth=(USER, "wrong")).status_code == 401
        page = client.get("/", auth=(USER, PASSWORD))
        assert page.status_code == 200 and page.json()["upstream"] == "dashboard"
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert page.json()["headers"]["x-forwarded-proto"] == "https"
        # the basic-auth user is the identity callqa may use ([access] proxy_header); a client cannot set it
        spoofed = client.get("/deep_dive", auth=(USER, PASSWORD), headers={"X-Forwarded-User": "admin"})
        assert spoofed.json()["headers"]["x-forwarded-user"] == USER
        # the Streamlit websocket: Upgrade and Connection reach the upstream
        stream = client.get("/_stcore/stream", auth=(USER, PASSWORD),
                            headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"})
        seen = stream.json()["headers"]
        assert seen["upgrade"] == "websocket" and seen["connection"].lower() == "upgrade"
        assert seen["x-forwarded-user"] == USER
        assert client.get("/_stcore/stream").status_code == 401
        # the load balancer's dashboard health check needs no login
        assert client.get("/_stcore/health").status_code == 200
        # the API: no basic auth, /api/ stripped, the client's X-API-Key passed through untouched
        answer = client.post("/api/analyze", json={"recording_id": 1}, headers={"X-API-Key": "client-key"})
        assert answer.status_code == 200 and answer.json()["upstream"] == "api"
        assert answer.json()["path"] == "/analyze" and answer.json()["headers"]["x-api-key"] == "client-key"
        # bodies over 64 KiB stop at nginx, like [api] max_body_bytes in callqa
        too_big = client.post("/api/analyze", content=b"x" * 70_000, headers={"content-type": "application/json"})
        assert too_big.status_code == 413
        assert len(api.requests) == 1
        # metrics are private from outside 127.0.0.1 (this client is local, so it is allowed here)
        assert client.get("/api/metrics").json()["path"] == "/metrics"
    plain = httpx.get(f"http://127.0.0.1:{http_port}/x?y=1", timeout=5, trust_env=False)
    assert plain.status_code == 301 and plain.headers["location"].startswith("https://")


def test_nginx_and_api_agree_on_ports_and_limits() -> None:
    site = SITE.read_text()
    assert f"server 127.0.0.1:{DEFAULT_PORT};" in site
    limit = re.search(r"client_max_body_size (\d+)k;", site)
    assert limit and int(limit.group(1)) * 1024 == ApiSettings().max_body_bytes
    assert "auth_basic_user_file /etc/nginx/callqa.htpasswd;" in site
    stream = site[site.index("location /_stcore/stream"):]
    stream = stream[:stream.index("}")]
    assert "proxy_set_header Upgrade $http_upgrade;" in stream and "$callqa_connection_upgrade" in stream
    api = site[site.index("location /api/ {"):]
    assert "auth_basic" not in api[:api.index("}")]  # the API authenticates with X-API-Key itself


# --- systemd ---------------------------------------------------------------------------------------
def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file as lists of (key, value), keeping repeated keys."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None and "=" in line, f"{path.name}: bad line {raw!r}"
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def one(section: list[tuple[str, str]], key: str) -> str:
    found = values(section, key)
    assert len(found) == 1, f"{key}: {found}"
    return found[0]


def _check_units_structure() -> None:
    """Every unit: required keys, hardening, resource limits, consistent paths and commands."""
    from core.cli import cli

    for name in SERVICES:
        unit = parse_unit(UNITS / name)
        service = unit["Service"]
        assert one(unit["Unit"], "Description")
        assert one(service, "User") == "callqa" and one(service, "Group") == "callqa"
        for key, expected in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                              ("ProtectHome", "yes"), ("StandardOutput", "journal"), ("StandardError", "journal")):
            assert one(service, key) == expected, (name, key)
        assert "/var/lib/callqa" in one(service, "ReadWritePaths").split()
        assert re.fullmatch(r"\d+[KMG]", one(service, "MemoryMax")), name
        assert re.fullmatch(r"\d+%", one(service, "CPUQuota")), name
        assert one(service, "CapabilityBoundingSet") == ""
        env = dict(v.split("=", 1) for v in values(service, "Environment"))
        assert env["CALLQA_CONFIG"] == "/etc/callqa/callqa.toml"
        assert env["CALLQA_DATA"] == "/var/lib/callqa" and env["CALLQA_TMP"].startswith("/var/lib/callqa/")
        for key, value in env.items():  # secrets only through EnvironmentFile=, never inline
            assert not re.search(r"KEY|PASSWORD|SECRET|TOKEN", key), (name, key)
            assert not re.search(r"sk-ant-|password", value, re.IGNORECASE), (name, key)
        exec_start = one(service, "ExecStart").split()
        assert exec_start[0].startswith("/opt/callqa/.venv/bin/"), name
        assert one(service, "WorkingDirectory") == "/opt/callqa"
        if name in ("callqa-api.service", "callqa-dashboard.service", "callqa-worker.service", "callqa-watch.service"):
            assert one(service, "Restart") == "on-failure"
            assert one(unit["Install"], "WantedBy") == "multi-user.target"
            assert "/etc/callqa/secrets.env" in values(service, "EnvironmentFile")
        else:
            assert one(service, "Type") == "oneshot" and "Install" not in unit  # started by its timer
        if exec_start[0].endswith("/callqa"):
            # the arguments parse with the real CLI (unknown options or bad values would fail here)
            args = [env.get(a[2:-1], a) if a.startswith("${") else a for a in exec_start[1:]]
            command = cli.get_command(click.Context(cli), args[0])
            assert command is not None, (name, args[0])
            command.make_context(f"callqa {args[0]}", args[1:])
        else:
            assert exec_start[0].endswith("/streamlit") and exec_start[1:3] == ["run", "/opt/callqa/server.py"]
            assert (PROJECT_ROOT / "server.py").is_file() and (PROJECT_ROOT / "app.py").is_file()
            assert env["FORWARDED_ALLOW_IPS"] == ""  # the peer stays nginx: [access] trusted_proxies decides
    api = " ".join(one(parse_unit(UNITS / "callqa-api.service")["Service"], "ExecStart").split()[1:])
    assert api == f"serve --host 127.0.0.1 --port {DEFAULT_PORT}"  # what nginx and Prometheus point at
    dashboard = one(parse_unit(UNITS / "callqa-dashboard.service")["Service"], "ExecStart")
    assert "--server.address 127.0.0.1 --server.port 8501" in dashboard and "127.0.0.1:8501" in SITE.read_text()
    for name in TIMERS:
        unit = parse_unit(UNITS / name)
        target = one(unit["Timer"], "Unit")
        assert target == name.replace(".timer", ".service") and (UNITS / target).is_file()
        assert values(unit["Timer"], "OnCalendar") or values(unit["Timer"], "OnUnitInactiveSec")
        assert one(unit["Install"], "WantedBy") == "timers.target"


def test_systemd_units_are_consistent_and_verify(tmp_path: Path) -> None:
    _check_units_structure()
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        # no systemd tools here: the structural check above is the whole test (reported, not skipped)
        print("systemd-analyze not installed: structural check only")
        return
    root = tmp_path / "root"
    bin_dir = root / "opt" / "callqa" / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("callqa", "streamlit"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for path in sorted(UNITS.iterdir()):
        (units / path.name).write_text(path.read_text().replace("/opt/callqa", str(root / "opt" / "callqa")))
    names = [p.name for p in sorted(units.iterdir())]
    assert sorted(names) == sorted(SERVICES + TIMERS)
    done = subprocess.run([analyze, "verify", *names], cwd=units, capture_output=True, text=True, timeout=120)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, output
    assert not [line for line in output.splitlines() if "callqa" in line], output


# --- Prometheus and Grafana ------------------------------------------------------------------------
def test_prometheus_config_is_valid() -> None:
    text = PROMETHEUS_YML.read_text()
    assert "job_name: callqa-api" in text and f'"127.0.0.1:{DEFAULT_PORT}"' in text
    promtool = _require("promtool")
    done = subprocess.run([promtool, "check", "config", str(PROMETHEUS_YML)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_dashboard_is_importable_json() -> None:
    dashboard = json.loads(GRAFANA_JSON.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    (ds_input,) = dashboard["__inputs"]
    assert ds_input["pluginId"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${" + ds_input["name"] + "}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(set(refs)) == len(refs) and all(t["expr"].strip() for t in panel["targets"])
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24
    titles = " ".join(p["title"].lower() for p in panels)
    for topic in ("mos", "dead air", "silence", "one-way"):
        assert topic in titles, topic


ALERT_RULES = PROJECT_ROOT / "deploy" / "prometheus" / "callqa-alerts.yml"


def test_prometheus_alert_rules_pass_promtool_check_and_fire_as_written(tmp_path: Path) -> None:
    """``promtool check rules``, then ``promtool test rules``: series as callqa exports them make
    CallqaRuleFiring fire with the rule's value and severity, and stale checks raise their alert."""
    promtool = _require("promtool")
    done = subprocess.run([promtool, "check", "rules", str(ALERT_RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
    assert "rule_files:\n  - callqa-alerts.yml" in PROMETHEUS_YML.read_text()
    labels = 'rule="carrier one-way audio",group_by="carrier",group="FLOWROUTE"'
    test = {
        "rule_files": [str(ALERT_RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f'callqa_alert_firing{{{labels},severity="critical"}}', "values": "0 0 1 1 1"},
                {"series": f'callqa_alert_value{{{labels},metric="one_way_rate"}}', "values": "0.01 0.02 0.125 0.125 0.125"},
                {"series": "callqa_alert_last_check_timestamp_seconds", "values": "0 0 0 0 0"},
            ],
            "alert_rule_test": [
                {"eval_time": "1m", "alertname": "CallqaRuleFiring", "exp_alerts": []},
                {"eval_time": "3m", "alertname": "CallqaRuleFiring", "exp_alerts": [{
                    "exp_labels": {"rule": "carrier one-way audio", "group_by": "carrier", "group": "FLOWROUTE",
                                   "metric": "one_way_rate", "severity": "critical"},
                    "exp_annotations": {
                        "summary": "callqa: carrier one-way audio (carrier FLOWROUTE)",
                        "description": "one_way_rate = 0.125 for carrier FLOWROUTE; the callqa Alerts page lists "
                                       "the calls."}}]},
                {"eval_time": "3m", "alertname": "CallqaAlertChecksStale", "exp_alerts": []},  # "for: 10m" not yet
            ],
        }],
    }
    path = tmp_path / "callqa-alerts.test.yml"
    path.write_text(json.dumps(test))  # JSON is YAML
    done = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

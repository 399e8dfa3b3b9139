"""Egress control end to end: a listener on 127.0.0.1 receives nothing from a webhook, an S3 endpoint or a Spark
cluster the configuration points at it, unless AUTOLOADER_EGRESS_ALLOW lists it; then it does. Checked when saved,
when tested and again when connecting (DNS rebinding), and webhook redirects to a refused host are not followed."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.bootstrap import Container, build
from app.db.models import ClusterCreate
from app.settings import Settings
from core.egress import EgressRefused
from core.errors import ConfigError
from tests.helpers import spec

PUBLIC = "93.184.216.34"  # what a rebinding name answers when the configuration is saved; never connected to


class Listener:
    """An HTTP server that counts every TCP connection it accepts (HTTP, S3 and Spark Connect clients alike)."""

    def __init__(self, host: str = "127.0.0.1", redirect_to: str | None = None, redirect_status: int = 302):
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def handle(self) -> None:
                listener.connections += 1
                super().handle()

            def answer(self) -> None:
                listener.requests.append(f"{self.command} {self.path}")
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if listener.redirect_to:
                    self.send_response(listener.redirect_status)
                    self.send_header("Location", listener.redirect_to)
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PUT = do_HEAD = answer

            def log_message(self, *args: Any) -> None:
                pass

        self.connections = 0
        self.requests: list[str] = []
        self.redirect_to = redirect_to
        self.redirect_status = redirect_status
        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.host, self.port = host, int(self.server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def database_url(state_dir: Path) -> str:
    """SQLite only: egress does not depend on the metadata database."""
    return f"sqlite:///{state_dir / 'meta.db'}"


@pytest.fixture
def settings(state_dir: Path, database_url: str, tmp_path: Path) -> Settings:
    """Nothing allowed: the suite's environment allows loopback, these tests do not."""
    return Settings(
        data_dir=state_dir / "data",
        database_url=database_url,
        secret_key="test-secret-key",
        local_roots=[tmp_path],
        egress_allow=[],
        heartbeat_seconds=0.5,
    )


@pytest.fixture
def with_allow(settings: Settings) -> Iterator[Callable[..., Container]]:
    """Build more containers on the same data and metadata database with another AUTOLOADER_EGRESS_ALLOW."""
    built: list[Container] = []

    def make(*allow: str) -> Container:
        container = build(settings.model_copy(update={"egress_allow": list(allow)}))
        built.append(container)
        return container

    yield make
    for container in built:
        container.close()


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """`*.rebind.test` names answer the address in the returned dict, for every client in this process."""
    answers: dict[str, str] = {"address": PUBLIC}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".rebind.test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers["address"], int(port or 0)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def failing_spec(tmp_path: Path, webhook: str, name: str = "orders") -> Any:
    """An ingestion whose run fails (its folder does not exist) and so raises a webhook alert."""
    return spec(str(tmp_path / "missing"), name=name, quality={"webhook_url": webhook})


def webhook_delivery(container: Container, ingestion_id: int) -> str:
    assert container.alerts.flush(timeout=30)
    note = container.notifications.open_alert(ingestion_id, "run_failed")
    assert note is not None
    return str(note.deliveries["webhook"])


def ingestion_body(tmp_path: Path, **source: Any) -> dict[str, Any]:
    return {
        "name": "egress",
        "source": {"type": "local", "path": str(tmp_path), **source},
        "format": {"type": "json"},
        "destination": {"table": "t"},
    }


# --- webhooks ---------------------------------------------------------------------------------------------------


def test_a_webhook_to_loopback_is_refused_when_saved_or_tested(api: Any, listener: Listener, tmp_path: Path) -> None:
    body = {**ingestion_body(tmp_path), "quality": {"webhook_url": f"{listener.url}/hook"}}
    for path in ("/api/v1/ingestions", "/api/v1/ingestions/test"):
        answer = api.post(path, json=body)
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["field"] == "quality.webhook_url"
        assert "'127.0.0.1' is a loopback address" in error["message"]
        assert "AUTOLOADER_EGRESS_ALLOW" in error["action"]
    assert api.get("/api/v1/ingestions").json() == []
    assert listener.connections == 0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://example.com/"])
def test_a_webhook_is_http_or_https_only(api: Any, tmp_path: Path, url: str) -> None:
    answer = api.post("/api/v1/ingestions", json={**ingestion_body(tmp_path), "quality": {"webhook_url": url}})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "quality.webhook_url"


def test_an_allowed_webhook_is_delivered(with_allow: Callable[..., Container], listener: Listener, tmp_path: Path):  # type: ignore[no-untyped-def]
    allowed = with_allow("127.0.0.1")
    ingestion = allowed.ingestions.create(failing_spec(tmp_path, f"{listener.url}/hook"), activate=True)
    allowed.runs.run_now(str(ingestion.id))
    assert webhook_delivery(allowed, ingestion.id) == "ok"
    assert listener.requests == ["POST /hook"]


def test_a_webhook_is_checked_again_when_sent(
    with_allow: Callable[..., Container], listener: Listener, tmp_path: Path
) -> None:
    """Saved while loopback was allowed; the server restarted without the allow entry sends nothing."""
    ingestion = with_allow("127.0.0.1").ingestions.create(failing_spec(tmp_path, listener.url), activate=True)
    closed = with_allow()
    closed.runs.run_now(str(ingestion.id))
    delivery = webhook_delivery(closed, ingestion.id)
    assert delivery.startswith("failed") and "loopback" in delivery and "AUTOLOADER_EGRESS_ALLOW" in delivery
    assert listener.connections == 0


def test_a_rebinding_webhook_name_is_refused_when_connecting(
    with_allow: Callable[..., Container], listener: Listener, tmp_path: Path, rebinding_dns: dict[str, str]
) -> None:
    services = with_allow()
    url = f"http://hook.rebind.test:{listener.port}/hook"
    ingestion = services.ingestions.create(failing_spec(tmp_path, url), activate=True)  # resolves to PUBLIC
    rebinding_dns["address"] = "127.0.0.1"
    services.runs.run_now(str(ingestion.id))
    assert "resolves to 127.0.0.1" in webhook_delivery(services, ingestion.id)
    assert listener.connections == 0


def test_a_webhook_connects_to_the_address_it_checked(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that answers a public address to the check and loopback right after: the connection uses the checked
    answer's resolution step, never a second lookup of its own."""
    import urllib.request

    from core.egress import EgressAllow, open_url

    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hook.rebind.test":
            lookups.append(host)
            address = PUBLIC if len(lookups) == 1 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    request = urllib.request.Request(f"http://hook.rebind.test:{listener.port}/hook", data=b"{}", method="POST")
    with pytest.raises(EgressRefused, match="resolves to 127"):
        open_url(request, EgressAllow(), timeout=5, field="quality.webhook_url")
    assert len(lookups) == 2 and listener.connections == 0


@pytest.mark.parametrize("allow", ["127.0.0.2/32", "127.0.0.0/8"])
def test_a_webhook_redirect_is_not_followed_and_the_delivery_says_so(
    with_allow: Callable[..., Container], listener: Listener, tmp_path: Path, allow: str
) -> None:
    """Not to a refused host, and not to an allowed one either: urllib follows a redirected POST as a GET without
    its body, so the alert was lost while its delivery read "ok" (an outside attack)."""
    redirecting = Listener("127.0.0.2", redirect_to=f"{listener.url}/stolen")
    try:
        services = with_allow(allow)
        ingestion = services.ingestions.create(failing_spec(tmp_path, f"{redirecting.url}/hook"), activate=True)
        services.runs.run_now(str(ingestion.id))
        delivery = webhook_delivery(services, ingestion.id)
    finally:
        redirecting.close()
    assert redirecting.requests == ["POST /hook"]
    assert listener.connections == 0
    assert delivery.startswith("failed") and "HTTP 302, a redirect to http://127.0.0.1:" in delivery
    assert "not followed" in delivery and "/stolen" not in delivery


# --- S3 endpoints ------------------------------------------------------------------------------------------------


def s3_body(endpoint: str) -> dict[str, Any]:
    credentials = {"type": "access_key", "access_key_id": "key", "secret_access_key": "secret-value"}
    source = {"type": "s3", "path": "s3://bucket/landing/", "endpoint_url": endpoint, "credentials": credentials}
    return {"name": "s3", "source": source, "format": {"type": "json"}, "destination": {"table": "t"}}


def test_an_s3_endpoint_on_loopback_is_refused_at_test_and_create(api: Any, listener: Listener) -> None:
    for path in ("/api/v1/ingestions/test", "/api/v1/ingestions"):
        answer = api.post(path, json=s3_body(listener.url))
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["field"] == "source.endpoint_url" and "loopback" in error["message"]
        assert "AUTOLOADER_EGRESS_ALLOW" in error["action"]
    assert listener.connections == 0


CLOUD_SOURCES = {
    "sftp-host": ({"type": "sftp", "path": "sftp://127.0.0.1:2222/in"}, "source.path"),
    "azure-account-host": ({"type": "azure_blob", "path": "https://127.0.0.1/container/in/"}, "source.path"),
    "azure-endpoint": (
        {"type": "azure_blob", "path": "abfss://c@acct.dfs.core.windows.net/in/", "endpoint_url": "http://127.0.0.1:1"},
        "source.endpoint_url",
    ),
    "gcs-endpoint": (
        {"type": "gcs", "path": "gs://bucket/in/", "endpoint_url": "http://127.0.0.1:1"},
        "source.endpoint_url",
    ),
}
CLOUD_CREDENTIALS = {
    "sftp": {"type": "password", "username": "u", "password": "p"},
    "azure_blob": {"type": "sas", "sas_token": "sv=1"},
    "gcs": {"type": "anonymous"},
}


@pytest.mark.parametrize("case", list(CLOUD_SOURCES))
def test_a_cloud_source_host_on_loopback_is_refused_at_create_and_update(api: Any, tmp_path: Path, case: str) -> None:
    """The SFTP host, an Azure account host and the Azure/GCS endpoint pass the rule S3 endpoints pass when saved."""
    source, field = CLOUD_SOURCES[case]
    body = {**ingestion_body(tmp_path), "source": {**source, "credentials": CLOUD_CREDENTIALS[source["type"]]}}
    created = api.post("/api/v1/ingestions", json=ingestion_body(tmp_path))
    assert created.status_code == 201, created.text
    for method, path in (("post", "/api/v1/ingestions"), ("put", f"/api/v1/ingestions/{created.json()['id']}")):
        answer = getattr(api, method)(path, json=body)
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["field"] == field and "'127.0.0.1' is a loopback address" in error["message"]
        assert "AUTOLOADER_EGRESS_ALLOW" in error["action"]


@pytest.mark.parametrize("status", [301, 302, 307])
def test_an_s3_endpoint_that_answers_with_a_redirect_is_named_as_no_s3_endpoint(
    with_allow: Callable[..., Container], status: int
) -> None:
    """Found by an outsider: the console's own URL as endpoint_url gave "S3 refused the request (303)" and "Check the
    source settings". A redirect is no S3 answer: the error names the endpoint field and what it must be."""
    from core.config import IngestionSpec
    from core.errors import TerminalError

    redirecting = Listener(redirect_to="http://127.0.0.1:1/login", redirect_status=status)
    try:
        allowed = with_allow("127.0.0.1")
        with pytest.raises(TerminalError) as refused:
            allowed.previews.test(IngestionSpec.model_validate(s3_body(redirecting.url)))
    finally:
        redirecting.close()
    assert refused.value.field == "source.endpoint_url", refused.value.message
    assert "keeps redirecting" in refused.value.message  # botocore's region redirector went into a RecursionError
    assert "S3 API endpoint" in refused.value.action


def test_an_s3_redirect_answered_as_an_error_names_the_endpoint_field(with_allow: Callable[..., Container]) -> None:
    """A store that answers 303 as an error (an outsider's console URL as endpoint_url did) is named the same way.
    botocore's own ClientError is built here: the listener above cannot make botocore stop at a 303."""
    from botocore.exceptions import ClientError

    from core.config import SourceConfig
    from core.storage import open_storage

    allowed = with_allow("127.0.0.1")
    storage = open_storage(SourceConfig.model_validate(s3_body("http://127.0.0.1:1")["source"]), allowed.guards)
    answer = {"Error": {"Code": "303", "Message": "See Other"}, "ResponseMetadata": {"HTTPStatusCode": 303}}
    error = storage._translate(ClientError(answer, "ListObjectsV2"))  # type: ignore[attr-defined]
    assert error is not None and error.field == "source.endpoint_url", error
    assert "with HTTP 303, not as S3 does" in error.message and "S3 API endpoint" in error.action


def test_an_allowed_s3_endpoint_is_contacted(with_allow: Callable[..., Container], listener: Listener) -> None:
    from core.config import IngestionSpec

    allowed = with_allow("127.0.0.1")
    with pytest.raises(Exception):  # noqa: B017 - the listener is no S3 server; only the contact matters
        allowed.previews.test(IngestionSpec.model_validate(s3_body(listener.url)))
    assert listener.connections >= 1 and listener.requests[0].startswith("GET /bucket")


def test_an_s3_endpoint_that_rebinds_is_refused_before_each_request(
    settings: Settings, listener: Listener, rebinding_dns: dict[str, str]
) -> None:
    from core.config import SourceConfig
    from core.storage import open_storage

    guards = build(settings).guards
    source = SourceConfig.model_validate(s3_body(f"http://s3.rebind.test:{listener.port}")["source"])
    storage = open_storage(source, guards)  # built while the name resolves to a public address
    rebinding_dns["address"] = "127.0.0.1"
    with pytest.raises(EgressRefused) as info:
        list(storage.list_files())
    assert "resolves to 127.0.0.1, which is a loopback address" in info.value.message
    assert listener.connections == 0


# --- Spark clusters ---------------------------------------------------------------------------------------------


def test_a_cluster_on_loopback_is_refused_when_registered(api: Any, listener: Listener) -> None:
    for url in (f"sc://127.0.0.1:{listener.port}", f"sc://localhost:{listener.port}", "sc://169.254.169.254:1"):
        answer = api.post("/api/v1/clusters", json={"name": "c", "connect_url": url, "table_format": "parquet"})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == "connect_url"
        assert "AUTOLOADER_EGRESS_ALLOW" in answer.json()["error"]["action"]
    assert api.get("/api/v1/clusters").json() == []


def test_a_local_cluster_must_name_this_machine(api: Any) -> None:
    body = {"name": "c", "kind": "local", "connect_url": "sc://10.1.2.3:15002", "table_format": "parquet"}
    answer = api.post("/api/v1/clusters", json=body)
    assert answer.status_code == 422 and "local cluster" in answer.json()["error"]["message"]
    local = api.post("/api/v1/clusters", json={"name": "mine", "kind": "local", "table_format": "parquet"})
    assert local.status_code == 201, local.text
    assert local.json()["connect_url"].startswith("sc://localhost:")


def test_a_cluster_is_checked_again_when_tested(with_allow: Callable[..., Container], listener: Listener) -> None:
    allowed = with_allow("127.0.0.1")
    cluster = allowed.clusters.create(ClusterCreate(name="c", connect_url=f"sc://127.0.0.1:{listener.port}"))
    closed = with_allow()
    with pytest.raises(EgressRefused) as info:
        closed.clusters.test(cluster.id)
    assert info.value.field == "connect_url"
    assert listener.connections == 0
    result = allowed.clusters.test(cluster.id)  # allowed: the client does connect (the listener is no Spark)
    assert not result.ok and listener.connections >= 1


# --- the warehouse ----------------------------------------------------------------------------------------------


def test_a_warehouse_endpoint_on_a_refused_address_stops_the_start(settings: Settings) -> None:
    options = {"AWS_ENDPOINT_URL": "http://169.254.169.254", "AWS_REGION": "us-east-1"}
    with pytest.raises(ConfigError) as info:
        build(settings.model_copy(update={"warehouse_storage_options": options}))
    assert "cloud metadata" in info.value.message
    assert info.value.field == "AUTOLOADER_WAREHOUSE_STORAGE_OPTIONS.AWS_ENDPOINT_URL"

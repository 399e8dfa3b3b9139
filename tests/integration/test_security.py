"""Closed by default: every route needs credentials, tenants never see each other, roles limit changes, logins lock
after repeated failures, and a masked secret sent back keeps the stored one. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api import mount_api
from core.access import SYSTEM, Role
from tests.helpers import write_json_files

PASSWORD = "correct-horse-battery"


@pytest.fixture
def app(services) -> FastAPI:  # type: ignore[no-untyped-def]
    application = FastAPI()
    mount_api(application, services)
    return application


@pytest.fixture
def anonymous(app: FastAPI) -> Any:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def client_for(app: FastAPI, services: Any, email: str, role: Role, tenant_id: int | None = None) -> TestClient:
    """A client with a token of a new user (created by the instance admin)."""
    user = services.accounts.create_user(SYSTEM, email, PASSWORD, role, tenant_id)
    _, who = services.accounts.login(email, PASSWORD)
    token = services.accounts.create_token(who, user.id, "test").token
    return TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"})


def _body(path: Path, name: str = "orders", table: str = "orders") -> dict[str, Any]:
    return {
        "name": name,
        "source": {"type": "local", "path": str(path), "file_pattern": "*.json"},
        "format": {"type": "json"},
        "destination": {"catalog": "main", "database": "sales", "table": table},
    }


def test_every_api_route_but_health_answers_401_without_a_token(app: FastAPI, anonymous: Any) -> None:
    """The route list comes from the app itself (its OpenAPI schema): a new route is covered without editing this."""
    checked = 0
    for route, operations in app.openapi()["paths"].items():
        path = re.sub(r"\{[^}]+\}", "1", route)
        for method in (m.upper() for m in operations):
            answer = anonymous.request(method, path, json={})
            if (method, route) == ("GET", "/api/v1/health"):
                assert answer.status_code == 200
                continue
            assert answer.status_code == 401, f"{method} {route}: {answer.status_code}"
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.headers["www-authenticate"].startswith("Bearer")
            checked += 1
    assert checked >= 30
    bad = anonymous.get("/api/v1/ingestions", headers={"Authorization": "Bearer al_not-a-real-token"})
    assert bad.status_code == 401


def test_docs_and_pages_need_a_login(anonymous: Any) -> None:
    for path in ("/docs", "/openapi.json", "/redoc", "/", "/ingestions/1", "/clusters", "/_nicegui/client/x/upload/1"):
        answer = anonymous.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next="), path
    assert anonymous.get("/api/v1/health").headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in anonymous.get("/api/v1/health").headers["content-security-policy"]


def test_tenants_never_see_each_other(app: FastAPI, services: Any, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 2, 5)
    other = services.accounts.create_tenant(SYSTEM, "analytics")
    first = client_for(app, services, "a@example.com", Role.ADMIN)
    second = client_for(app, services, "b@example.com", Role.ADMIN, other.id)
    created = first.post("/api/v1/ingestions", json={**_body(tmp_path / "in"), "activate": True})
    assert created.status_code == 201, created.text
    ingestion_id = created.json()["id"]
    run = first.post(f"/api/v1/ingestions/{ingestion_id}/run")
    assert run.status_code == 202
    services.runner.wait(run.json()["run_id"])

    assert second.get("/api/v1/ingestions").json() == []
    for method, path in [
        ("GET", f"/api/v1/ingestions/{ingestion_id}"),
        ("GET", f"/api/v1/ingestions/{ingestion_id}/runs"),
        ("GET", f"/api/v1/ingestions/{ingestion_id}/runs/{run.json()['run_id']}"),
        ("GET", f"/api/v1/ingestions/{ingestion_id}/files"),
        ("GET", f"/api/v1/ingestions/{ingestion_id}/metrics"),
        ("GET", f"/api/v1/ingestions/{ingestion_id}/schema-versions"),
        ("POST", f"/api/v1/ingestions/{ingestion_id}/run"),
        ("POST", f"/api/v1/ingestions/{ingestion_id}/pause"),
        ("DELETE", f"/api/v1/ingestions/{ingestion_id}"),
    ]:
        answer = second.request(method, path)
        assert answer.status_code == 404, f"{method} {path}: {answer.status_code} {answer.text}"
    assert second.put(f"/api/v1/ingestions/{ingestion_id}", json=_body(tmp_path / "in")).status_code == 404
    assert all(e["object_id"] != str(ingestion_id) for e in second.get("/api/v1/audit").json())
    # the same names in another tenant do not collide, and the tables live apart
    own = second.post("/api/v1/ingestions", json=_body(tmp_path / "in"))
    assert own.status_code == 201, own.text
    assert own.json()["table_uri"] != created.json()["table_uri"]
    assert first.get(f"/api/v1/ingestions/{ingestion_id}").json()["status"] == "active"


def test_role_matrix(app: FastAPI, services: Any, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin = client_for(app, services, "admin@example.com", Role.ADMIN)
    member = client_for(app, services, "member@example.com", Role.MEMBER)
    viewer = client_for(app, services, "viewer@example.com", Role.VIEWER)
    admins = admin.post("/api/v1/ingestions", json=_body(tmp_path, "admins", "t1")).json()["id"]
    members = member.post("/api/v1/ingestions", json=_body(tmp_path, "members", "t2"))
    assert members.status_code == 201, members.text
    mine = members.json()["id"]

    assert viewer.get("/api/v1/ingestions").status_code == 200
    assert len(viewer.get("/api/v1/ingestions").json()) == 2
    assert viewer.post("/api/v1/ingestions", json=_body(tmp_path, "viewers", "t3")).status_code == 403
    assert viewer.post(f"/api/v1/ingestions/{mine}/activate").status_code == 403
    assert viewer.delete(f"/api/v1/ingestions/{mine}").status_code == 403
    assert viewer.get("/api/v1/audit").status_code == 403

    assert member.post(f"/api/v1/ingestions/{admins}/activate").status_code == 404  # not theirs: not seen
    assert member.delete(f"/api/v1/ingestions/{admins}").status_code == 404
    assert member.post(f"/api/v1/ingestions/{mine}/activate").status_code == 200
    assert member.post("/api/v1/clusters", json={"name": "c", "connect_url": "sc://127.0.0.1:1"}).status_code == 403
    assert member.post("/api/v1/tenants", json={"name": "x"}).status_code == 403

    assert admin.post(f"/api/v1/ingestions/{mine}/pause").status_code == 200
    assert admin.post("/api/v1/tenants", json={"name": "x"}).status_code == 403  # not an instance admin
    me = member.get("/api/v1/me").json()
    assert me["role"] == "member" and me["tenant_id"] == 1


def test_members_see_only_the_ingestions_they_created(app: FastAPI, services: Any, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """PRODUCT.md §13: "member sees and edits own ingestions". Another user's ingestion of the same tenant is as
    missing to a member as another tenant's (its runs, files, schema and notifications too); admins and viewers
    see every ingestion of the tenant."""
    from app.db.models import Notification

    admin = client_for(app, services, "admin@example.com", Role.ADMIN)
    member = client_for(app, services, "member@example.com", Role.MEMBER)
    viewer = client_for(app, services, "viewer@example.com", Role.VIEWER)
    theirs = admin.post("/api/v1/ingestions", json=_body(tmp_path, "admins", "t1")).json()["id"]
    mine = member.post("/api/v1/ingestions", json=_body(tmp_path, "members", "t2")).json()["id"]
    for ingestion_id, title in ((theirs, "theirs failed"), (mine, "mine failed"), (None, "for everyone")):
        services.notifications.add(
            Notification(ingestion_id=ingestion_id, kind="run_failed", title=title, message="m", action="a")
        )

    assert [i["id"] for i in member.get("/api/v1/ingestions").json()] == [mine]
    assert sorted(i["id"] for i in viewer.get("/api/v1/ingestions").json()) == sorted([theirs, mine])
    for path in ("", "/runs", "/files", "/schema-versions", "/maintenance", "/metrics"):
        assert member.get(f"/api/v1/ingestions/{theirs}{path}").status_code == 404, path
        assert member.get(f"/api/v1/ingestions/{mine}{path}").status_code == 200, path
        assert admin.get(f"/api/v1/ingestions/{mine}{path}").status_code == 200, path
    feed = member.get("/api/v1/notifications").json()
    assert sorted(n["title"] for n in feed["items"]) == ["for everyone", "mine failed"]
    assert feed["unread"] == 2
    assert member.post("/api/v1/notifications/read-all").status_code == 204
    assert admin.get("/api/v1/notifications").json()["unread"] == 1  # the member marked only what they see read


MEMBER_WRITES = [
    ("POST", "/activate", None),
    ("POST", "/pause", None),
    ("POST", "/resume", None),
    ("POST", "/run", None),
    ("DELETE", "", None),
    ("PATCH", "", {"schedule": {"mode": "manual"}}),
    ("PUT", "/maintenance", {}),
    ("POST", "/maintenance", None),
    ("POST", "/full-refresh", None),
    ("POST", "/reprocess", {"paths": ["x"]}),
    ("POST", "/engine", {"cluster_id": None}),
]


def test_a_member_changing_another_users_ingestion_meets_a_missing_one(
    app: FastAPI, services: Any, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Writes answered 403 "Members may only …" for another user's ingestion and 404 for a missing one, so a member
    could tell which ids exist; retrying its run answered with the run's status; activating a second ingestion of
    its source and table named it (an attack on 71ec804). All are now as for a missing ingestion, or unnamed."""
    write_json_files(tmp_path / "in", 2, 5)
    admin = client_for(app, services, "admin@example.com", Role.ADMIN)
    member = client_for(app, services, "member@example.com", Role.MEMBER)
    created = admin.post("/api/v1/ingestions", json={**_body(tmp_path / "in", "secret-orders", "t1"), "activate": True})
    theirs = created.json()["id"]
    started = admin.post(f"/api/v1/ingestions/{theirs}/run")
    services.runner.wait(started.json()["run_id"])
    missing = theirs + 1000
    for method, path, body in MEMBER_WRITES:
        sent = {} if body is None else {"json": body}
        on_theirs = member.request(method, f"/api/v1/ingestions/{theirs}{path}", **sent)
        on_missing = member.request(method, f"/api/v1/ingestions/{missing}{path}", **sent)
        assert on_theirs.status_code == on_missing.status_code == 404, (method, path, on_theirs.text)
        assert on_theirs.json()["error"]["code"] == on_missing.json()["error"]["code"]
    retried = member.post(f"/api/v1/ingestions/{theirs}/runs/{started.json()['run_id']}/retry")
    assert retried.status_code == 404, retried.text
    mine = member.post("/api/v1/ingestions", json=_body(tmp_path / "in", "mine", "t1")).json()["id"]
    refused = member.post(f"/api/v1/ingestions/{mine}/activate")
    assert refused.status_code == 409 and "secret-orders" not in refused.text, refused.text
    assert "Another user's ingestion already loads" in refused.json()["error"]["message"]
    assert admin.get(f"/api/v1/ingestions/{theirs}").json()["status"] == "active"  # nothing of it changed


def test_tokens_are_shown_once_and_revoked(app: FastAPI, services: Any) -> None:  # type: ignore[no-untyped-def]
    admin = client_for(app, services, "admin@example.com", Role.ADMIN)
    me = admin.get("/api/v1/me").json()
    issued = admin.post(f"/api/v1/users/{me['user_id']}/tokens", json={"name": "ci"})
    assert issued.status_code == 201
    token = issued.json()["token"]
    listed = admin.get(f"/api/v1/users/{me['user_id']}/tokens").json()
    assert all("token" not in t for t in listed) and {t["name"] for t in listed} == {"test", "ci"}
    second = TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"})
    assert second.get("/api/v1/me").status_code == 200
    assert admin.delete(f"/api/v1/users/{me['user_id']}/tokens/{issued.json()['id']}").status_code == 204
    assert second.get("/api/v1/me").status_code == 401
    actions = [e["action"] for e in admin.get("/api/v1/audit").json()]
    assert "token_create" in actions and "token_revoke" in actions and "login" in actions


def test_login_locks_after_repeated_failures(app: FastAPI, services: Any, anonymous: Any) -> None:  # type: ignore[no-untyped-def]
    services.accounts.create_user(SYSTEM, "ada@example.com", PASSWORD, Role.MEMBER, None)
    for _ in range(5):
        wrong = anonymous.post(
            "/auth/login", data={"email": "ada@example.com", "password": "nope"}, follow_redirects=False
        )
        assert wrong.status_code == 303 and "error=" in wrong.headers["location"]
    locked = anonymous.post(
        "/auth/login", data={"email": "ada@example.com", "password": PASSWORD}, follow_redirects=False
    )
    assert "locked" in locked.headers["location"] and "autoloader_session" not in locked.cookies
    failures = [e for e in services.views.audit(SYSTEM, 50) if e.action == "login_failed"]
    assert len(failures) == 5


def test_a_login_sets_a_strict_session_cookie_and_logout_ends_it(app: FastAPI, services: Any) -> None:  # type: ignore[no-untyped-def]
    services.accounts.create_user(SYSTEM, "ada@example.com", PASSWORD, Role.MEMBER, None)
    with TestClient(app, raise_server_exceptions=False) as browser:
        signed = browser.post(
            "/auth/login", data={"email": "ada@example.com", "password": PASSWORD, "next": "//evil.example/"},
            follow_redirects=False,
        )  # fmt: skip
        assert signed.status_code == 303 and signed.headers["location"] == "/"  # no open redirect
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert browser.get("/openapi.json").status_code == 200
        foreign = browser.post("/auth/logout", headers={"Origin": "http://evil.example"}, follow_redirects=False)
        assert foreign.status_code == 403
        assert browser.post("/auth/logout", follow_redirects=False).status_code == 303
        assert browser.get("/openapi.json", follow_redirects=False).status_code == 303


def test_a_masked_secret_sent_back_keeps_the_stored_secret(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    body = {
        "name": "s3-orders",
        "source": {
            "type": "s3", "path": "s3://bucket/orders/", "endpoint_url": "http://127.0.0.1:9",
            "credentials": {"type": "access_key", "access_key_id": "AKIA123", "secret_access_key": "s3cr3t-value"},
        },
        "format": {"type": "json"},
        "destination": {"table": "orders"},
    }  # fmt: skip
    created = api.post("/api/v1/ingestions", json=body)
    assert created.status_code == 201, created.text
    shown = api.get(f"/api/v1/ingestions/{created.json()['id']}").json()
    assert shown["source"]["credentials"]["secret_access_key"] == "********"
    assert "s3cr3t-value" not in created.text + str(shown)
    back = {k: shown[k] for k in ("name", "source", "format", "destination", "schedule", "quality", "limits")}
    assert api.put(f"/api/v1/ingestions/{shown['id']}", json=back).status_code == 200
    stored = services.store.get_ingestion(shown["id"]).spec.source.credentials
    assert stored.secret_access_key == "s3cr3t-value"


def test_the_api_is_rate_limited_per_user(services, settings) -> None:  # type: ignore[no-untyped-def]
    settings.rate_limit_per_minute = 3
    application = FastAPI()
    mount_api(application, services)
    client = client_for(application, services, "busy@example.com", Role.VIEWER)
    answers = [client.get("/api/v1/ingestions") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert answers[-1].json()["error"]["code"] == "rate_limited"
    other = client_for(application, services, "calm@example.com", Role.VIEWER)
    assert other.get("/api/v1/ingestions").status_code == 200  # per user


def test_a_webhook_url_is_masked_in_the_api_encrypted_at_rest_and_kept_when_sent_back(
    api, services, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Its path is the hook's token (Slack, Teams): it came back in every GET and sat in the clear in the metadata
    DB (an outside attack; PRODUCT.md §13: secrets never returned, encrypted at rest)."""
    from sqlalchemy import text

    hook = "https://hooks.example.com/services/T1/B2/very-secret-token"
    body = {"name": "hooked", "source": {"type": "local", "path": str(tmp_path)}, "format": {"type": "json"}}
    body |= {"destination": {"table": "hooked"}, "quality": {"webhook_url": hook}}
    created = api.post("/api/v1/ingestions", json=body)
    assert created.status_code == 201, created.text
    shown = api.get(f"/api/v1/ingestions/{created.json()['id']}").json()
    assert shown["quality"]["webhook_url"] == "https://hooks.example.com/********"
    assert "very-secret-token" not in created.text + str(shown) + api.get("/api/v1/ingestions").text
    with services.store.engine.connect() as connection:
        assert all("very-secret-token" not in str(row) for row in connection.execute(text("SELECT * FROM ingestion")))
    put = api.put(f"/api/v1/ingestions/{shown['id']}", json={k: shown[k] for k in body} | {"name": "hooked-2"})
    assert put.status_code == 200, put.text
    assert services.store.get_ingestion(shown["id"]).spec.quality.webhook_url == hook
    forged = api.patch(f"/api/v1/ingestions/{shown['id']}", json={"quality": {"webhook_url": "https://x/enc:v1:AAAA"}})
    assert forged.status_code == 422 and "stored in" in forged.text
    assert services.store.get_ingestion(shown["id"]).spec.quality.webhook_url == hook


def test_a_webhook_url_stored_in_the_clear_by_an_earlier_version_is_sealed_at_start(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from tests.helpers import spec

    hook = "https://hooks.example.com/services/T1/B2/left-from-before"
    ingestion = services.ingestions.create(spec(str(tmp_path), quality={"webhook_url": hook}))
    with services.store.engine.begin() as connection:  # as a version before sealing stored it
        quality = json.dumps({"webhook_url": hook})
        connection.execute(text("UPDATE ingestion SET quality = :q WHERE id = :i"), {"q": quality, "i": ingestion.id})
    assert services.store.seal_plain_webhooks() == 1
    with services.store.engine.connect() as connection:
        assert all("left-from-before" not in str(row) for row in connection.execute(text("SELECT * FROM ingestion")))
    assert services.store.get_ingestion(ingestion.id).spec.quality.webhook_url == hook
    assert services.store.seal_plain_webhooks() == 0


def test_secrets_rotate_re_encrypts_every_credential(services, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.bootstrap import build
    from app.db.secrets_rotation import rotate_credentials
    from app.secrets_box import SecretBox
    from app.settings import Settings
    from core.errors import ConfigError
    from tests.helpers import spec

    source = {
        "type": "s3", "path": "s3://b/p/", "endpoint_url": "http://127.0.0.1:9",
        "credentials": {"type": "access_key", "access_key_id": "AKIA", "secret_access_key": "old-world-secret"},
    }  # fmt: skip
    hook = "https://hooks.example.com/services/T1/B2/rotate-me"
    ingestion = services.ingestions.create(spec("/unused", source=source, quality={"webhook_url": hook}))
    moved = rotate_credentials(services.db, SecretBox("test-secret-key"), SecretBox("a-brand-new-key"))
    assert moved == 2
    rotated = build(
        Settings(data_dir=settings.data_dir, database_url=settings.database_url, secret_key="a-brand-new-key")
    )
    try:
        stored = rotated.store.get_ingestion(ingestion.id).spec
        assert stored.source.credentials.secret_access_key == "old-world-secret"
        assert stored.quality.webhook_url == hook
    finally:
        rotated.close()
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        services.store.get_ingestion(ingestion.id)


def test_a_run_of_a_server_whose_key_was_rotated_under_it_fails_saying_so(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: `autoloader secrets rotate` beside a running server left every scheduled run queued
    for ever, with no error on the run, the ingestion or an alert. The run now ends failed with the reason and the
    action (restart the servers)."""
    from app.db.secrets_rotation import rotate_credentials
    from app.secrets_box import SecretBox
    from core.domain import RunStatus
    from tests.helpers import spec

    source = {
        "type": "s3", "path": "s3://b/p/", "endpoint_url": "http://127.0.0.1:9",
        "credentials": {"type": "access_key", "access_key_id": "AKIA", "secret_access_key": "old-world-secret"},
    }  # fmt: skip
    ingestion = services.ingestions.create(spec("/unused", source=source), activate=True)
    rotate_credentials(services.db, SecretBox("test-secret-key"), SecretBox("a-brand-new-key"))
    run_id = services.store.create_run(ingestion.id, "scheduled")
    services.runner.submit(ingestion.id, run_id)
    services.runner.wait(run_id, timeout=60)
    run = services.store.get_run_by_id(run_id)
    assert run.status == RunStatus.FAILED, run
    assert run.errors[0]["kind"] == "invalid_config" and "cannot be decrypted" in run.errors[0]["message"]
    assert "restart the servers" in run.errors[0]["action"]


@pytest.mark.s3
def test_a_secret_never_comes_back_in_any_answer_or_log(
    api, services, seaweedfs, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    bucket = seaweedfs.new_bucket()
    client = seaweedfs.client()
    for path in write_json_files(tmp_path / "gen", 2, 50):
        client.upload_file(str(path), bucket, f"events/{path.name}")
    body = {
        "name": "s3-events",
        "source": {
            "type": "s3", "path": f"s3://{bucket}/events/", "endpoint_url": seaweedfs.endpoint_url,
            "region": seaweedfs.region, "file_pattern": "*.json",
            "credentials": {
                "type": "access_key", "access_key_id": seaweedfs.access_key, "secret_access_key": seaweedfs.secret_key
            },
        },
        "format": {"type": "json"},
        "destination": {"table": "s3_events"},
        "activate": True,
    }  # fmt: skip
    answers = [api.post("/api/v1/ingestions/test", json={k: v for k, v in body.items() if k != "activate"})]
    answers.append(api.post("/api/v1/ingestions", json=body))
    ingestion_id = answers[-1].json()["id"]
    answers.append(api.post(f"/api/v1/ingestions/{ingestion_id}/run"))
    services.runner.wait(answers[-1].json()["run_id"])
    for path in ("", "/runs", "/files", "/metrics", "/schema-versions"):
        answers.append(api.get(f"/api/v1/ingestions/{ingestion_id}{path}"))
    answers += [api.get("/api/v1/ingestions"), api.get("/api/v1/audit"), api.get("/api/v1/notifications")]
    assert (
        answers[2].status_code == 202
        and api.get(f"/api/v1/ingestions/{ingestion_id}/runs").json()[0]["status"] == "success"
    )
    everything = "\n".join(a.text for a in answers) + caplog.text
    assert seaweedfs.secret_key not in everything
    with services.db.connect() as conn:
        stored = conn.exec_driver_sql("SELECT source FROM ingestion").scalar()
    assert seaweedfs.secret_key not in str(stored)


def test_secrets_rotate_refuses_a_short_new_key(  # type: ignore[no-untyped-def]
    settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by an outsider: `--new-key short` was taken, and every stored credential (and backup) rested on it."""
    from app.cli import main

    monkeypatch.setenv("AUTOLOADER_DATA_DIR", str(settings.data_dir))
    assert main(["secrets", "rotate", "--new-key", "short"]) == 2
    said = capsys.readouterr().err
    assert "the new key is 5 characters long" in said and "at least 16 random characters" in said
    assert not (settings.data_dir / "secret.key.new").exists()

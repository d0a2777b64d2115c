"""The REST API over real HTTP: provisioning, idempotency and every kind of bad request."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from core.metrics import FAMILIES as BOT_FAMILIES
from database.redis_tenants import TENANT_COMMANDS
from database.roles import owner_role
from master_bot.metrics import FAMILIES
from master_bot.store import TenantStatus
from tests.master.conftest import Harness, make_token
from tests.master.procs import processes_of

CONTRACT = {
    "TENANT_ID",
    "BOT_TOKEN",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "TELEGRAM_API_URL",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "ADMIN_IDS",
    "BUSINESS_NAME",
    "LOCALE",
    "TIMEZONE",
    "PLAN_FEATURES",
}
# What the process backend adds, and what Python's C-locale coercion may add by itself.
PROCESS_EXTRAS = {"PATH", "PYTHONPATH", "PYTHONUNBUFFERED", "LC_CTYPE"}


async def test_provisioning_creates_a_running_isolated_tenant(harness: Harness) -> None:
    token = await harness.new_bot("romashka_bot")
    reply = await harness.api.provision(token, key="order-happy", owner_telegram_id=7001)

    assert reply.status == 201, reply.body
    tenant = reply.body
    tid = tenant["tenant_id"]
    assert re.fullmatch(r"client_\d+", tid)
    assert tenant["status"] == "active"
    assert tenant["provision_step"] == "done"
    assert tenant["bot_username"] == "romashka_bot"
    assert tenant["runtime"]["state"] == "running"
    assert token not in json.dumps(reply.body)

    # control row: the token is stored encrypted (and decrypts for this tenant only)
    (row,) = await harness.fetch("SELECT * FROM control.tenants WHERE tenant_id = $1", tid)
    assert row["status"] == TenantStatus.ACTIVE
    assert token not in row["bot_token_enc"]
    box = harness.master.deps.box
    assert box.decrypt(tid, row["bot_token_enc"]) == token
    db_password = box.decrypt(tid, row["db_password_enc"])
    redis_password = box.decrypt(tid, row["redis_password_enc"])

    # schema with the tenant migrations, owned by the tenant's NOLOGIN owner role (database/roles)
    tables = await harness.fetch(
        "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = $1", tid
    )
    assert {"schema_migrations"} < {t["tablename"] for t in tables}
    owners = {t["tableowner"] for t in tables if t["tablename"] != "schema_migrations"}
    assert owners == {owner_role(tid)}

    # Redis ACL user limited to the tenant prefix
    acl: Any = await harness.redis.acl_getuser(tid)
    assert "on" in acl["flags"]
    assert acl["keys"] in ([f"~{{{tid}}}:*"], [f"~{{{tid}}}:*".encode()])  # its hash tag
    assert "keys" not in TENANT_COMMANDS

    # clients/<id>/ has the settings and a compose file, and no secret anywhere
    folder = harness.clients_dir / tid
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["environment"]["TENANT_ID"] == tid
    assert settings["environment"]["ADMIN_IDS"] == "7001"
    compose = (folder / "docker-compose.yml").read_text()
    assert f"botfleet-{tid}" in compose and "cap_drop" in compose
    secret_part = token.split(":", 1)[1]
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            for secret in (secret_part, db_password, redis_password):
                assert secret not in text, f"a secret leaked into {path.name}"

    # exactly one bot process, with exactly the environment contract
    assert len(processes_of(tid)) == 1

    async def logged_env() -> bool:
        return "env: " in (folder / "bot.log").read_text()

    await harness.wait_for(logged_env)
    names = set(
        next(
            line for line in (folder / "bot.log").read_text().splitlines() if line.startswith("env")
        )
        .removeprefix("env: ")
        .split(",")
    )
    assert names >= CONTRACT
    assert names - CONTRACT <= PROCESS_EXTRAS, names - CONTRACT

    # every state change is in the audit log
    audit = await harness.master.deps.store.audit_entries(tid)
    actions = [a["action"] for a in audit]
    assert actions[0] == "tenant.allocated"
    assert "provision.runtime" in actions and actions[-1] == "tenant.status"
    assert {a["actor"] for a in audit} == {"api"}


async def test_retry_with_same_key_returns_the_same_tenant(harness: Harness) -> None:
    token = await harness.new_bot()
    first = await harness.api.provision(token, key="order-42")
    again = await harness.api.provision(token, key="order-42")
    assert first.status == 201
    assert again.status == 200
    assert again.body["tenant_id"] == first.body["tenant_id"]
    rows = await harness.fetch("SELECT tenant_id FROM control.tenants")
    assert len(rows) == 1
    assert len(processes_of(first.body["tenant_id"])) == 1


async def test_the_business_category_reaches_the_bots_contract(harness: Harness) -> None:
    """The category picked while buying is stored and given to the bot (BUSINESS_CATEGORY),
    which seeds its services and hours; an order without one leaves the contract as before."""
    token = await harness.new_bot()
    reply = await harness.api.provision(token, key="order-fit", category="fitness")
    assert reply.status == 201, reply.body
    tid = reply.body["tenant_id"]
    (row,) = await harness.fetch("SELECT category FROM control.tenants WHERE tenant_id = $1", tid)
    assert row["category"] == "fitness"
    env = json.loads((harness.clients_dir / tid / "settings.json").read_text())["environment"]
    assert env["BUSINESS_CATEGORY"] == "fitness"

    plain = await harness.api.provision(await harness.new_bot(), key="order-plain")
    env = json.loads((harness.clients_dir / plain.body["tenant_id"] / "settings.json").read_text())[
        "environment"
    ]
    assert "BUSINESS_CATEGORY" not in env

    unknown = await harness.api.provision(await harness.new_bot(), category="casino")
    assert unknown.status == 422, unknown.body
    assert "category" in json.dumps(unknown.body)


async def test_token_of_another_tenant_is_409(harness: Harness) -> None:
    token = await harness.new_bot()
    assert (await harness.api.provision(token, key="order-a")).status == 201
    reply = await harness.api.provision(token, key="order-b")
    assert reply.status == 409
    assert reply.error_code == "bot_token_in_use"
    assert token not in json.dumps(reply.body)


async def test_same_key_with_another_body_is_409(harness: Harness) -> None:
    token = await harness.new_bot()
    assert (await harness.api.provision(token, key="order-c")).status == 201
    reply = await harness.api.provision(token, key="order-c", plan="pro")
    assert reply.status == 409
    assert reply.error_code == "idempotency_key_reused"


async def test_invalid_and_revoked_tokens_are_422(harness: Harness) -> None:
    unknown = make_token()
    reply = await harness.api.provision(unknown)
    assert reply.status == 422
    assert reply.error_code == "invalid_bot_token"
    assert "revoked" in reply.body["error"]["message"]
    assert unknown.split(":")[1] not in json.dumps(reply.body)

    revoked = await harness.new_bot()
    await harness.tg.revoke_bot(revoked)
    reply = await harness.api.provision(revoked)
    assert reply.status == 422 and reply.error_code == "invalid_bot_token"

    malformed = await harness.api.provision("not-a-token")
    assert malformed.status == 422 and malformed.error_code == "invalid_bot_token"
    assert await harness.fetch("SELECT 1 FROM control.tenants") == []


async def test_auth_is_required(harness: Harness) -> None:
    missing = await harness.api.call("GET", "/api/v1/tenants", auth=False)
    assert missing.status == 401 and missing.error_code == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await harness.api.call(
        "GET", "/api/v1/tenants", auth=False, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status == 401
    # Non-ASCII in the header must not break the comparison.
    odd = await harness.api.call(
        "GET", "/api/v1/tenants", auth=False, headers={"Authorization": "Bearer тест"}
    )
    assert odd.status == 401
    assert (await harness.api.call("GET", "/health", auth=False)).status == 200


async def test_bad_requests_are_4xx_with_one_error_shape(harness: Harness) -> None:
    api = harness.api
    key = {"Idempotency-Key": "order-bad", "Content-Type": "application/json"}
    cases = [
        (await api.call("POST", "/api/v1/tenants", data=b"{not json", headers=key), 400),
        (await api.call("POST", "/api/v1/tenants", data=b"", headers=key), 400),
        (await api.call("POST", "/api/v1/tenants", json=[1, 2], headers=key), 422),
        (
            await api.call(
                "POST",
                "/api/v1/tenants",
                json={"plan": "basic", "period_days": "30"},
                headers=key,
            ),
            422,
        ),
        (await api.call("POST", "/api/v1/tenants", json={}), 400),  # no Idempotency-Key
        (await api.call("GET", "/api/v1/tenants/client_404404"), 404),
        (await api.call("GET", "/api/v1/tenants/not-a-tenant"), 404),
        (await api.call("POST", "/api/v1/tenants/client_404404/stop"), 404),
        (await api.call("DELETE", "/api/v1/tenants/client_404404"), 404),
        (await api.call("GET", "/api/v1/tenants", params={"limit": "many"}), 422),
        (await api.call("GET", "/api/v1/tenants", params={"status": "sleeping"}), 422),
        (await api.call("GET", "/api/v1/nothing-here"), 404),
        (await api.call("PUT", "/api/v1/tenants"), 405),
        (await api.call("POST", "/api/v1/tenants", data=b"x" * 200_000, headers=key), 413),
    ]
    for reply, status in cases:
        assert reply.status == status, (reply.status, reply.body)
        assert set(reply.body) == {"error"}, reply.body
        assert {"code", "message"} <= set(reply.body["error"])
    wrong_type = cases[3][0].body["error"]
    assert wrong_type["code"] == "validation_error"
    fields = {p["field"] for p in wrong_type["details"]["problems"]}
    assert "period_days" in fields and "bot_token" in fields
    # the server still serves
    assert (await api.call("GET", "/health")).status == 200


async def test_list_filters_and_pages(harness: Harness) -> None:
    tokens = [await harness.new_bot() for _ in range(3)]
    for i, token in enumerate(tokens):
        plan = "pro" if i == 0 else "basic"
        assert (await harness.api.provision(token, plan=plan)).status == 201
    page = await harness.api.call("GET", "/api/v1/tenants", params={"limit": "2"})
    assert page.status == 200
    assert page.body["total"] == 3 and len(page.body["items"]) == 2
    rest = await harness.api.call("GET", "/api/v1/tenants", params={"limit": "2", "offset": "2"})
    assert len(rest.body["items"]) == 1
    pro = await harness.api.call("GET", "/api/v1/tenants", params={"plan": "pro"})
    assert [t["plan"] for t in pro.body["items"]] == ["pro"]
    stopped = await harness.api.call("GET", "/api/v1/tenants", params={"status": "stopped"})
    assert stopped.body["total"] == 0


async def test_openapi_health_and_metrics(harness: Harness) -> None:
    doc = await harness.api.call("GET", "/openapi.json", auth=False)
    assert doc.status == 200
    paths = doc.body["paths"]
    assert set(paths["/api/v1/tenants"]) == {"get", "post"}
    for action in ("extend", "start", "stop", "restart", "suspend", "resume"):
        assert "post" in paths[f"/api/v1/tenants/{{tenant_id}}/{action}"]
    assert "delete" in paths["/api/v1/tenants/{tenant_id}"]
    assert "ProvisionIn" in doc.body["components"]["schemas"]

    health = await harness.api.call("GET", "/health", auth=False)
    assert health.status == 200
    assert health.body["status"] == "ok"
    assert set(health.body["checks"]) == {"postgres", "redis", "deploy_backend:process"}

    token = await harness.new_bot()
    assert (await harness.api.provision(token)).status == 201
    assert (await harness.api.call("GET", "/metrics", auth=False)).status == 401
    metrics = await harness.api.call("GET", "/metrics")
    assert metrics.status == 200
    assert metrics.headers["Content-Type"].startswith("text/plain")
    text = metrics.body
    assert 'botfleet_tenants{status="active"} 1' in text
    assert 'botfleet_deploys_total{operation="deploy"} 1' in text
    assert "botfleet_reconcile_duration_seconds_count" in text


PROMETHEUS = Path(__file__).resolve().parents[2] / "docs" / "prometheus"
SUMMARY = ("_sum", "_count")
HISTO = ("_bucket", "_sum", "_count")
PROMQL_BUILTINS = {"up"}  # series Prometheus makes itself
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}


def metric_names(expr: str) -> set[str]:
    """The series names an expression reads (not functions, labels, durations or keywords)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\b(?!\s*\()", expr))
    return names - PROMQL_WORDS


def test_prometheus_rules_use_only_metrics_the_master_exposes() -> None:
    families = {**FAMILIES, **BOT_FAMILIES}  # the master's and a bot process's
    exposed = set(families)
    exposed |= {f"{n}{s}" for n, (t, _) in families.items() if t == "summary" for s in SUMMARY}
    exposed |= {f"{n}{s}" for n, (t, _) in families.items() if t == "histogram" for s in HISTO}
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {"BotfleetBotsDown", "BotfleetCrashLoop", "BotfleetPaymentsFailing"} <= {
        a.get("alert") for a in alerts
    }
    assert any("backup" in a["expr"] for a in alerts)
    for rule in alerts:
        assert {"alert", "expr", "for", "labels"} <= set(rule), rule
        assert rule["labels"].get("severity") in {"warning", "critical"}, rule
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), rule
        names = metric_names(rule["expr"])
        assert names, rule
        unknown = names - exposed - PROMQL_BUILTINS
        assert not unknown, f"{rule['alert']}: {sorted(unknown)} not in any FAMILIES"
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = config["scrape_configs"]
    assert {j["job_name"] for j in jobs} == {"botfleet-master", "botfleet-sales"}
    for job in jobs:  # each behind its token (kept in a file), each watched by an `up` alert
        assert job["metrics_path"] == "/metrics"
        auth = job["authorization"]
        assert auth["type"] == "Bearer" and "credentials" not in auth
        assert 'job="' + job["job_name"] + '"' in json.dumps(alerts).replace('\\"', '"')
    promtool = shutil.which("promtool")  # Debian's `prometheus` package; optional here
    if promtool:
        for args in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"]):
            done = subprocess.run(
                [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False
            )
            if args[1] == "config" and "credentials_file" in done.stdout + done.stderr:
                continue  # the token file only exists on the Prometheus host
            assert done.returncode == 0, done.stdout + done.stderr


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition, by name and sorted labels (parsed, not string-matched)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metric_names_reads_series_not_functions() -> None:
    expr = 'time() - increase(a_b{kind="x y"}[5m]) > on (job) sum by (kind) (c_total) and d'
    assert metric_names(expr) == {"a_b", "c_total", "d"}


async def test_metrics_gauges_backups_orders_and_alerts(harness: Harness) -> None:
    backups = harness.master.deps.config.backups_dir
    backups.mkdir(parents=True, exist_ok=True)
    none = await harness.api.call("GET", "/metrics")
    assert samples(none.body)[("botfleet_backup_last_success_timestamp_seconds", ())] == 0
    for name in (
        "botfleet-20250101T000000000000Z.dump",  # whole database: counts
        "botfleet-20250301T120000500000Z.d",  # per-schema set: counts, newest
        "client_042-20260101T000000000000Z.dump",  # one tenant: not a platform backup
        "botfleet-20260101T000000000000Z.dump.partial",  # unfinished
    ):
        if name.endswith(".d"):
            (backups / name).mkdir()
        else:
            (backups / name).write_bytes(b"")
    token = await harness.new_bot()
    assert (await harness.api.provision(token)).status == 201
    scraped = samples((await harness.api.call("GET", "/metrics")).body)
    newest = datetime(2025, 3, 1, 12, 0, 0, 500000, tzinfo=UTC).timestamp()
    assert scraped[("botfleet_backup_last_success_timestamp_seconds", ())] == newest
    assert scraped[("botfleet_alerts_total", (("kind", "provisioned"),))] == 1
    assert scraped[("botfleet_tenants_should_run", ())] == 1
    assert scraped[("botfleet_tenants_running", ())] == 1
    assert scraped[("botfleet_tenants_down", ())] == 0
    assert scraped[("botfleet_deploy_backend_up", ())] == 1
    for status in ("pending", "paid", "canceled", "refunded"):
        assert scraped[("botfleet_orders", (("status", status),))] >= 0, status
    assert scraped[("botfleet_orders_paid_undelivered", ())] >= 0

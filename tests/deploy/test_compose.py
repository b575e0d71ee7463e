"""The structure of docker-compose.yaml, Dockerfile and .env.example (Docker itself does not run here).

Checks what a deployment depends on: the services and their start order, the executor, mounts,
healthchecks, the init service that migrates the DB, and that no secret is written down anywhere but
in the git-ignored .env.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from credit_bot.settings import Settings
from harness.deployment import HANDOFF_TUNING

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
LONG_RUNNING = ["postgres", "redis", *AIRFLOW_SERVICES]
# Interpolation that fails `docker compose up` when the variable is not set: the only way a secret
# may appear in the compose file.
REQUIRED = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}")
MOUNT = re.compile(r"(?P<source>.+?):(?P<target>/[^:]+)(?::(?P<mode>ro|rw))?")
OPTIONAL = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-\}")
SECRET_KEYS = re.compile(r"PASSWORD|SECRET_KEY|JWT_SECRET|FERNET_KEY|TOKEN|^AIRFLOW_CONN_|^AIRFLOW_VAR_")


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service]["environment"].items()}


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            [values[name]] = shlex.split(value) or [""]
    return values


def test_has_the_airflow_3_celery_stack() -> None:
    assert set(SERVICES) >= {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES}
    for service, command in AIRFLOW_SERVICES.items():
        assert SERVICES[service]["command"] == command


@pytest.mark.parametrize("service", [*AIRFLOW_SERVICES, "airflow-init"])
def test_airflow_services_share_the_project_image_config_and_mounts(service: str) -> None:
    spec = SERVICES[service]
    assert spec["build"] == "."
    env = _env(service)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert "/opt/airflow/plugins" in env["PYTHONPATH"].split(":")
    mounts = {m["target"]: volume for volume in spec["volumes"] if (m := MOUNT.fullmatch(volume))}
    for folder in ("dags", "plugins", "include/notebooks"):
        assert mounts[f"/opt/airflow/{folder}"].startswith(f"${{AIRFLOW_PROJ_DIR:-.}}/{folder}:")
    assert mounts["/opt/airflow/output"].startswith("credit-bot-output:")  # shared by all workers
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "true"
    # The hand-off tuning the deployment tests and the bench measured is what production runs.
    assert {key: env.get(key) for key in HANDOFF_TUNING} == HANDOFF_TUNING


@pytest.mark.parametrize("service", [*AIRFLOW_SERVICES, "airflow-init"])
def test_connections_and_settings_come_from_the_environment(service: str) -> None:
    env = _env(service)
    for name in (
        "AIRFLOW_CONN_SLACK_API_DEFAULT",
        "AIRFLOW_CONN_LOOKER_DEFAULT",
        "AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT",
        "AIRFLOW_VAR_CREDIT_BOT_SETTINGS",
    ):
        match = REQUIRED.fullmatch(env[name])
        assert match, f"{service}: {name} must be ${{{name}:?...}}"
        assert match["name"] == name


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_long_running_services_have_healthchecks(service: str) -> None:
    check = SERVICES[service]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert check["retries"] >= 1
    assert SERVICES[service]["restart"] == "always"


def test_services_start_in_order() -> None:
    for service in AIRFLOW_SERVICES:
        depends = SERVICES[service]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["airflow-init"]["condition"] == "service_completed_successfully"
    assert SERVICES["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    init_depends = SERVICES["airflow-init"]["depends_on"]
    assert {name: d["condition"] for name, d in init_depends.items()} == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
    }


def test_init_service_migrates_the_db_and_exits() -> None:
    init = SERVICES["airflow-init"]
    env = _env("airflow-init")
    assert env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert "exec /entrypoint airflow version" in init["command"][-1]  # the entrypoint runs the migration
    assert "healthcheck" not in init
    assert "restart" not in init


def test_the_api_server_is_published_on_loopback_only() -> None:
    assert SERVICES["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080"]
    assert "/api/v2/monitor/health" in " ".join(SERVICES["airflow-apiserver"]["healthcheck"]["test"])


def test_no_secret_is_written_in_the_compose_file() -> None:
    for name, spec in SERVICES.items():
        for key, value in (spec.get("environment") or {}).items():
            if SECRET_KEYS.search(key):
                # Required from .env (${X:?…}), or optional with an empty default (${X:-}): never a literal.
                from_env = REQUIRED.search(str(value)) or OPTIONAL.fullmatch(str(value))
                assert from_env, f"{name}: {key} must come from .env, not a literal"
    for url_key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
        url = _env("airflow-scheduler")[url_key]
        assert REQUIRED.search(url.split("@")[0]), f"{url_key}: the DB password must come from .env"
    text = (ROOT / "docker-compose.yaml").read_text()
    assert "xoxb-" not in text
    assert "jwt_secret:-" not in text.lower()  # no default JWT secret, unlike the upstream example


def test_env_example_defines_every_required_variable_with_fake_values() -> None:
    example = _env_example()
    required = set(REQUIRED.findall((ROOT / "docker-compose.yaml").read_text()))
    assert required <= set(example), f"missing from .env.example: {sorted(required - set(example))}"
    for name, value in example.items():
        if SECRET_KEYS.search(name) and not name.startswith("AIRFLOW_VAR_"):
            assert "not-a-real" in value, f"{name} in .env.example must be an obviously fake value"
    for name in ("AIRFLOW_CONN_SLACK_API_DEFAULT", "AIRFLOW_CONN_LOOKER_DEFAULT"):
        assert json.loads(example[name])["conn_type"]
    assert json.loads(example["AIRFLOW_CONN_SLACK_API_DEFAULT"])["password"] == "xoxb-not-a-real-token"
    settings = Settings.from_json(example["AIRFLOW_VAR_CREDIT_BOT_SETTINGS"])
    assert settings.dry_run is True  # going live is a deliberate edit


def test_env_file_is_ignored_by_git_and_docker() -> None:
    assert "/.env" in (ROOT / ".gitignore").read_text().splitlines()
    dockerignore = [
        line for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] not in ("", "#")
    ]
    assert dockerignore[0] == "*"  # a whitelist: .env can never enter the build context
    assert not any(".env" in line for line in dockerignore if line.startswith("!"))


def test_dockerfile_extends_the_official_image_with_the_locked_requirements() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG AIRFLOW_IMAGE=apache/airflow:3\.3\.2(-python3\.11)?$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{AIRFLOW_IMAGE\}$", dockerfile, re.M)
    assert re.search(r"pip install .*apache-airflow==\$\{AIRFLOW_VERSION\}", dockerfile)
    assert "-r /opt/credit-bot/requirements.txt -c /opt/credit-bot/requirements.lock" in dockerfile
    instructions = [line for line in dockerfile.splitlines() if re.match(r"^(ENV|ARG) ", line)]
    assert not [line for line in instructions if SECRET_KEYS.search(line.split()[1].split("=")[0])]

"""The production compose file, checked without a container engine.

The schema is the Compose Specification schema that docker-compose 1.29.2 ships
(``compose/config/compose_spec.json`` of its PyPI wheel, Apache-2.0), vendored as
``deploy/compose-spec.schema.json``: it rejects unknown keys everywhere, so a file it
accepts is also read by today's Compose. When Debian's ``docker-compose`` is installed,
``docker-compose config -q`` must accept the file too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from citewise.core.settings import Settings, unknown_variables

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "deploy" / "compose-spec.schema.json"
NGINX = ROOT / "deploy" / "nginx.conf"
REQUIRED = {"POSTGRES_PASSWORD": "pg-pass", "REDIS_PASSWORD": "redis-pass", "QDRANT_API_KEY": "qk"}
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[?-])(?P<arg>[^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|API_KEY|SECRET|TOKEN|AUTH", re.IGNORECASE)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``; ``$$`` is a ``$``."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg or ""

    return VARIABLE.sub(substitute, value).replace("$$", "$")


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return []


def test_the_file_validates_against_the_compose_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []
    broken = compose()
    broken["services"]["api"]["replica"] = 3  # a typo is caught
    assert list(validator.iter_errors(broken))


def test_every_service_has_a_healthcheck_and_named_volumes_exist() -> None:
    data = compose()
    for name, service in data["services"].items():
        assert service.get("healthcheck", {}).get("test"), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") or source in data["volumes"], (name, volume)


def test_no_secret_is_written_in_the_file() -> None:
    data = compose()
    required = {m["name"] for s in strings(data) for m in VARIABLE.finditer(s) if m["op"] == ":?"}
    assert required == set(REQUIRED)
    for service in data["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) and value:
                match = VARIABLE.fullmatch(str(value))
                assert match is not None, (key, value)
                # required (${VAR:?message}), or optional without a default (${VAR:-})
                assert match["op"] == ":?" or (match["op"] == ":-" and not match["arg"]), key
    for text in strings(data):  # credentials inside URLs and command lines
        for password in re.findall(r"://[^/@\s:]*:(\$\{[^}]*\}|[^@/\s]+)@", text):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", password), text
    assert len([t for t in strings(data) if "://" in t and "PASSWORD" in t]) >= 3
    command = data["services"]["redis"]["command"]
    assert VARIABLE.fullmatch(command[command.index("--requirepass") + 1])
    example = (ROOT / ".env.example").read_text()
    for name in REQUIRED:
        assert re.search(rf"^{name}=$", example, re.MULTILINE), name  # listed, without a value


@pytest.mark.parametrize("service", ["api", "worker", "ui"])
def test_citewise_variables_are_real_settings_that_parse(
    service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment = compose()["services"][service].get("environment") or {}
    values = {k: interpolate(str(v), REQUIRED) for k, v in environment.items()}
    citewise = {k: v for k, v in values.items() if k.startswith("CITEWISE_")}
    assert unknown_variables(citewise) == {}
    for name in [n for n in os.environ if n.startswith("CITEWISE_")]:
        monkeypatch.delenv(name)
    for name, value in citewise.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    if service == "ui":
        return
    assert settings.index.backend == "server" and settings.index.url == "http://qdrant:6333"
    assert settings.index.api_key is not None
    assert settings.index.api_key.get_secret_value() == "qk"
    assert (settings.index.shard_number, settings.index.replication_factor) == (1, 1)
    assert settings.resolved_database_url.startswith("postgresql+psycopg://citewise:pg-pass@")
    assert settings.queue.redis_url == "redis://:redis-pass@redis:6379/0"
    assert settings.limits.storage_uri == "redis://:redis-pass@redis:6379/1"
    assert [tier.kind for tier in settings.answer.tiers] == ["openai", "extractive"]
    assert settings.answer.tiers[0].base_url == "http://llm:8080/v1"
    assert settings.answer.verification.judge_tier == settings.answer.tiers[0].name
    assert str(settings.data_dir) == "/data"


def test_profiles_replicas_and_shared_state() -> None:
    services = compose()["services"]
    profiles = {p for s in services.values() for p in s.get("profiles", [])}
    assert profiles == {"cluster", "llamacpp", "vllm"}
    cluster = [n for n, s in services.items() if "cluster" in s.get("profiles", [])]
    assert len(cluster) == 2 and "qdrant" not in cluster  # nodes 2 and 3 join node 1
    for name in cluster:
        command = services[name]["command"]
        assert command[command.index("--bootstrap") + 1] == "http://qdrant:6335"
        assert services[name]["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
    assert services["qdrant"]["command"][-1] == "http://qdrant:6335"
    assert "QDRANT__CLUSTER__ENABLED" in services["qdrant"]["environment"]
    for name in ("api", "worker"):
        assert services[name]["deploy"]["replicas"] > 1
        assert "data:/data" in services[name]["volumes"]  # the file store is shared
    assert services["worker"]["command"] == ["citewise", "worker"]
    assert services["api"]["environment"]["CITEWISE_QUEUE__API_WORKERS"] == "0"
    assert "ports" not in services["api"]  # reached through the proxy only
    ui = services["ui"]["command"]
    assert ui[:2] == ["citewise", "ui"] and ui[ui.index("--api-url") + 1] == "http://proxy:8000"
    assert services["redis"]["command"][1:3] == ["--appendonly", "yes"]


def test_the_proxy_balances_the_api_replicas_and_streams_events() -> None:
    proxy = compose()["services"]["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    conf = NGINX.read_text()
    assert re.search(r"server\s+api:8000\s+resolve", conf)
    assert "proxy_pass http://citewise_api;" in conf
    assert "proxy_buffering off;" in conf
    limit_mb = int(re.search(r"client_max_body_size (\d+)m;", conf)[1])  # type: ignore[index]
    assert limit_mb == Settings().ingest.max_request_mb


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_v1_accepts_the_file(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **REQUIRED}
    command = ["docker-compose", "-f", str(COMPOSE), "--profile", "cluster", "config", "-q"]
    accepted = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert accepted.returncode == 0, accepted.stderr
    missing = {k: v for k, v in env.items() if k != "POSTGRES_PASSWORD"}
    refused = subprocess.run(command, env=missing, cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode != 0 and "set POSTGRES_PASSWORD" in refused.stderr

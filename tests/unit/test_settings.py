from pathlib import Path

import pytest
import structlog
from pydantic import ValidationError

from citewise.core.errors import ConfigError, TenantError
from citewise.core.settings import load_settings, setting_variables, unknown_variables
from citewise.core.tenancy import Principal, validate_tenant_id


def test_defaults_are_embedded(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.index.backend == "edge"
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert [t.kind for t in settings.answer.tiers] == ["local", "extractive"]


def test_env_overrides_toml_and_nested_delimiter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "citewise.toml"
    toml.write_text('log_level = "DEBUG"\n[retrieval]\ntop_k = 9\nprefetch_dense = 11\n')
    monkeypatch.setenv("CITEWISE_RETRIEVAL__TOP_K", "3")
    settings = load_settings(toml)
    assert settings.log_level == "DEBUG"
    assert settings.retrieval.prefetch_dense == 11
    assert settings.retrieval.top_k == 3


def test_missing_toml_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


@pytest.mark.parametrize("bad", ["", "Demo", "../etc", "a/b", "x" * 64, "tenant id", "ü"])
def test_tenant_ids_are_restricted(bad: str) -> None:
    with pytest.raises(TenantError):
        validate_tenant_id(bad)


def test_principal_always_sees_everyone_documents() -> None:
    assert Principal(tenant_id="acme", groups=frozenset({"hr"})).visible_groups == ["*", "hr"]


def test_index_tenancy_defaults_to_a_collection_per_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(data_dir=tmp_path).index.tenancy == "collection"
    monkeypatch.setenv("CITEWISE_INDEX__BACKEND", "server")
    monkeypatch.setenv("CITEWISE_INDEX__TENANCY", "shared")
    monkeypatch.setenv("CITEWISE_INDEX__SHARED_COLLECTION", "kb_all")
    index = load_settings(data_dir=tmp_path).index
    assert (index.tenancy, index.shared_collection) == ("shared", "kb_all")


def test_shared_tenancy_is_refused_on_the_embedded_backend(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="tenancy='shared' needs index.backend='server'"):
        load_settings(data_dir=tmp_path, index={"tenancy": "shared"})
    with pytest.raises(ValidationError, match="tenancy"):
        load_settings(data_dir=tmp_path, index={"backend": "server", "tenancy": "pooled"})
    with pytest.raises(ValidationError, match="shared_collection"):
        load_settings(
            data_dir=tmp_path,
            index={"backend": "server", "tenancy": "shared", "shared_collection": "../kb"},
        )


def test_variables_that_set_nothing_are_found_with_a_guess() -> None:
    environ = {
        "CITEWISE_VERIFICATION__ON_UNSUPPORTED": "fallback",  # nested under answer
        "CITEWISE_LIMIT__ENABLED": "false",  # a typo
        "CITEWISE_NOTHING_LIKE_IT": "1",
        "CITEWISE_ANSWER__VERIFICATION__ON_UNSUPPORTED": "fallback",  # real
        "CITEWISE_ANSWER__TIERS": "[]",  # real, list-valued
        "CITEWISE_TEST_POSTGRES_URL": "postgresql://",  # the suite's, not a setting
        "PATH": "/usr/bin",
    }
    assert unknown_variables(environ) == {
        "CITEWISE_VERIFICATION__ON_UNSUPPORTED": "CITEWISE_ANSWER__VERIFICATION__ON_UNSUPPORTED",
        "CITEWISE_LIMIT__ENABLED": "CITEWISE_LIMITS__ENABLED",
        "CITEWISE_NOTHING_LIKE_IT": None,
    }
    assert "CITEWISE_QUEUE__METRICS_PORT" in set(setting_variables())


def test_load_settings_warns_about_a_variable_that_sets_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CITEWISE_LIMIT__ENABLED", "false")
    with structlog.testing.capture_logs() as logs:
        settings = load_settings(data_dir=tmp_path)
    assert settings.limits.enabled  # ignored, as pydantic-settings does
    assert {
        "event": "unknown_setting_ignored",
        "variable": "CITEWISE_LIMIT__ENABLED",
        "did_you_mean": "CITEWISE_LIMITS__ENABLED",
        "log_level": "warning",
    } in logs

from pathlib import Path

import pytest
from pydantic import ValidationError

from citewise.core.errors import ConfigError, TenantError
from citewise.core.settings import load_settings
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

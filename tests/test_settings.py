"""Settings: profile selection, env overrides of nested values, .env support, masked secrets."""

from __future__ import annotations

import json

import pytest

from ragline.settings import get_settings, masked_settings
from tests.conftest import run_cli


def test_dev_profile_is_the_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAGLINE_ENV", raising=False)
    settings = get_settings()
    assert settings.env == "dev"
    assert settings.store.kind == "edge"
    assert settings.tasks.retries == 1


@pytest.mark.parametrize(("profile", "store_kind", "retries"), [("docker", "qdrant", 3), ("prod", "qdrant", 5)])
def test_profile_chosen_by_ragline_env(monkeypatch, tmp_path, profile, store_kind, retries):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLINE_ENV", profile)
    settings = get_settings()
    assert (settings.env, settings.store.kind, settings.tasks.retries) == (profile, store_kind, retries)


def test_docker_profile_points_at_compose_services(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLINE_ENV", "docker")
    settings = get_settings()
    assert settings.store.url == "http://qdrant:6333"
    assert settings.prefect.api_url == "http://prefect-server:4200/api"


def test_env_overrides_a_nested_value_over_the_profile(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLINE_ENV", "prod")
    monkeypatch.setenv("RAGLINE_TASKS__RETRIES", "7")
    monkeypatch.setenv("RAGLINE_CHUNKING__MAX_CHARACTERS", "640")
    settings = get_settings()
    assert settings.tasks.retries == 7
    assert settings.chunking.max_characters == 640


def test_dotenv_file_is_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAGLINE_ENV", raising=False)
    (tmp_path / ".env").write_text("RAGLINE_ENV=docker\nRAGLINE_RETRIEVAL__K=9\n")
    settings = get_settings()
    assert settings.env == "docker"
    assert settings.retrieval.k == 9


def test_unknown_profile_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLINE_ENV", "staging")
    with pytest.raises(ValueError, match="use one of dev, docker, prod"):
        get_settings()


def test_secrets_are_masked(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLINE_STORE__API_KEY", "super-secret-key")
    monkeypatch.setenv("RAGLINE_GENERATION__API_KEY", "sk-another-secret")
    settings = get_settings()
    assert settings.store.api_key.get_secret_value() == "super-secret-key"
    dumped = json.dumps(masked_settings(settings))
    assert "super-secret-key" not in dumped and "sk-another-secret" not in dumped
    assert "**********" in dumped


def test_config_command_prints_effective_settings_masked(tmp_path):
    result = run_cli(
        "config",
        env={"RAGLINE_ENV": "prod", "RAGLINE_STORE__API_KEY": "hunter2-secret", "RAGLINE_RETRIEVAL__K": "11"},
    )
    assert result.returncode == 0, result.stderr
    assert "# profile: prod" in result.stdout
    body = json.loads(result.stdout.split("\n", 1)[1])
    assert body["retrieval"]["k"] == 11
    assert body["store"]["kind"] == "qdrant"
    assert "hunter2-secret" not in result.stdout

"""The credential chain: order of sources, key checks, and the secret never shown."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from posthog_pandas import _credentials
from posthog_pandas._credentials import Credentials, resolve
from posthog_pandas.exceptions import ConfigurationError, CredentialsError

KEY = "phx_argument_key_abcdefghijklmnopqrstuvwxyz012"
ENV_KEY = "phx_environment_key_abcdefghijklmnopqrstuv012"
DOTENV_KEY = "phx_dotenv_key_abcdefghijklmnopqrstuvwxyz01234"


def write_dotenv(directory: Path, text: str) -> Path:
    path = directory / ".env"
    path.write_text(text)
    return path


def test_explicit_argument_wins_over_environment_and_dotenv(tmp_path: Path) -> None:
    write_dotenv(Path.cwd(), f"POSTHOG_PERSONAL_API_KEY={DOTENV_KEY}\n")
    resolved = resolve(api_key=KEY, environ={"POSTHOG_PERSONAL_API_KEY": ENV_KEY}, prompt=False)
    assert resolved.credentials is not None
    assert resolved.credentials.api_key == KEY
    assert resolved.credentials.source == "argument"


def test_environment_wins_over_dotenv() -> None:
    write_dotenv(Path.cwd(), f"POSTHOG_PERSONAL_API_KEY={DOTENV_KEY}\nPOSTHOG_PROJECT_ID=7\n")
    resolved = resolve(
        environ={"POSTHOG_PERSONAL_API_KEY": ENV_KEY, "POSTHOG_HOST": "eu"}, prompt=False
    )
    assert resolved.credentials is not None
    assert resolved.credentials.api_key == ENV_KEY
    assert resolved.credentials.source == "environment"
    assert resolved.host == "https://eu.posthog.com"
    assert resolved.host_source == "environment"
    # the project id comes from the first source that names it: here the .env file
    assert resolved.project_id == 7
    assert resolved.project_source is not None and resolved.project_source.startswith(".env")


def test_dotenv_found_in_a_parent_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = Path.cwd()
    write_dotenv(
        parent, f"POSTHOG_PERSONAL_API_KEY={DOTENV_KEY}\nPOSTHOG_HOST=https://ph.example.com\n"
    )
    child = parent / "a" / "b"
    child.mkdir(parents=True)
    monkeypatch.chdir(child)
    resolved = resolve(environ={}, prompt=False)
    assert resolved.credentials is not None
    assert resolved.credentials.api_key == DOTENV_KEY
    assert resolved.credentials.source == f".env file ({parent / '.env'})"
    assert resolved.host == "https://ph.example.com"


def test_dotenv_does_not_change_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    write_dotenv(Path.cwd(), f"POSTHOG_PERSONAL_API_KEY={DOTENV_KEY}\n")
    resolve(prompt=False)
    assert "POSTHOG_PERSONAL_API_KEY" not in os.environ


def test_prompt_is_last_and_used_only_when_nothing_else_has_a_key() -> None:
    asked: list[str] = []

    def prompter(host: str) -> Credentials:
        asked.append(host)
        return Credentials(api_key=KEY, source="prompt")

    resolved = resolve(environ={}, prompt=prompter, dotenv=False)
    assert asked == ["https://us.posthog.com"]
    assert resolved.credentials is not None and resolved.credentials.source == "prompt"
    resolve(environ={"POSTHOG_PERSONAL_API_KEY": ENV_KEY}, prompt=prompter)
    assert asked == ["https://us.posthog.com"]


def test_no_prompt_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    assert _credentials.default_prompter() is None


def test_missing_credentials_message_lists_every_source_in_order() -> None:
    message = _credentials.missing_credentials_message("https://us.posthog.com")
    positions = [message.index(s) for s in ("1. arguments", "2. environment", "3. a .env", "4. an")]
    assert positions == sorted(positions)
    for name in ("POSTHOG_PERSONAL_API_KEY", "POSTHOG_HOST", "POSTHOG_PROJECT_ID"):
        assert name in message
    assert "Settings → Personal API keys" in message


def test_project_key_is_refused_with_an_explanation() -> None:
    with pytest.raises(CredentialsError) as info:
        resolve(api_key="phc_abcdefghijklmnopqrstuvwxyz0123456789", prompt=False)
    message = str(info.value)
    assert "project API key (phc_…)" in message
    assert "write-only" in message and "cannot read data" in message
    assert "Personal API keys → Create key" in message
    assert "phc_abcdefghijklmnop" not in message


def test_secret_key_is_refused() -> None:
    with pytest.raises(CredentialsError, match=r"project secret key \(phs_…\)"):
        resolve(environ={"POSTHOG_PERSONAL_API_KEY": "phs_secretsecretsecret"}, prompt=False)


def test_unprefixed_old_keys_are_allowed() -> None:
    resolved = resolve(api_key="abcdef0123456789abcdef0123456789", prompt=False)
    assert resolved.credentials is not None
    assert resolved.credentials.api_key == "abcdef0123456789abcdef0123456789"


def test_key_with_inner_whitespace_is_refused() -> None:
    with pytest.raises(CredentialsError, match="spaces or control characters"):
        resolve(api_key="phx_abc def", prompt=False)


def test_key_whitespace_around_is_stripped() -> None:
    resolved = resolve(api_key=f"  {KEY}\n", prompt=False)
    assert resolved.credentials is not None and resolved.credentials.api_key == KEY


def test_body_mode_and_bad_mode() -> None:
    resolved = resolve(api_key=KEY, key_in="body", prompt=False)
    assert resolved.credentials is not None and resolved.credentials.mode == "body"
    with pytest.raises(ConfigurationError, match="key_in='header'"):
        resolve(api_key=KEY, key_in="query", prompt=False)


def test_basic_auth_from_arguments_and_environment() -> None:
    resolved = resolve(username="ann@example.com", password="hunter2hunter2", prompt=False)
    assert resolved.credentials is not None
    assert resolved.credentials.mode == "basic"
    env = {"POSTHOG_USERNAME": "bob@example.com", "POSTHOG_PASSWORD": "pw-123456"}
    resolved = resolve(environ=env, prompt=False, dotenv=False)
    assert resolved.credentials is not None and resolved.credentials.username == "bob@example.com"
    with pytest.raises(CredentialsError, match="missing POSTHOG_PASSWORD"):
        resolve(username="ann@example.com", prompt=False)


def test_bad_project_id_names_its_source() -> None:
    with pytest.raises(ConfigurationError, match="project_id from environment must be a positive"):
        resolve(api_key=KEY, environ={"POSTHOG_PROJECT_ID": "abc"}, prompt=False)


def test_host_rules() -> None:
    assert (
        resolve(api_key=KEY, host="eu.posthog.com", prompt=False).host == "https://eu.posthog.com"
    )
    with pytest.warns(UserWarning, match="ingestion host"):
        assert resolve(api_key=KEY, host="https://us.i.posthog.com", prompt=False).host == (
            "https://us.posthog.com"
        )
    with pytest.raises(ConfigurationError, match="has a path"):
        resolve(api_key=KEY, host="https://us.posthog.com/project/1", prompt=False)
    with pytest.warns(UserWarning, match="plain http"):
        resolve(api_key=KEY, host="http://posthog.example.com", prompt=False)
    assert resolve(api_key=KEY, host="http://127.0.0.1:8000", prompt=False).host == (
        "http://127.0.0.1:8000"
    )
    # an IPv6 address keeps its brackets (without them "::1:8000" names no port)
    assert resolve(api_key=KEY, host="http://[::1]:8000", prompt=False).host == "http://[::1]:8000"
    assert resolve(api_key=KEY, host="https://[2001:db8::1]", prompt=False).host == (
        "https://[2001:db8::1]"
    )


def test_credentials_never_show_or_pickle_the_secret() -> None:
    creds = Credentials(api_key=KEY, source="environment")
    assert KEY not in repr(creds) and KEY not in str(creds)
    assert repr(creds) == "Credentials(mode='bearer', key='phx_…z012', source='environment')"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(creds)
    basic = Credentials(username="ann", password="s3cr3t-pass", mode="basic")
    assert "s3cr3t-pass" not in repr(basic)
    assert (
        basic.scrub("Authorization: Basic YW5uOnMzY3IzdC1wYXNz") == "Authorization: Basic ********"
    )
    assert creds.scrub(f"echo {KEY}") == "echo ********"

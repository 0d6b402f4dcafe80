"""Credentials: where the key comes from (argument, environment, .env, prompt) and how it is kept.

The secret lives only in a Credentials object that never shows it: its repr masks it, it refuses
to be pickled, and `scrub()` removes it (and any long piece of it) from any text before that text
is shown or logged.
"""

from __future__ import annotations

import base64
import getpass
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from posthog_pandas import _config
from posthog_pandas.exceptions import ConfigurationError, CredentialsError

AuthMode = Literal["bearer", "body", "basic"]

CREATE_KEY_HELP = (
    "Create a personal API key in PostHog: Settings → Personal API keys → Create key "
    "(give it read scopes: user:read, so connect() can find your project, plus those of what "
    "you read, e.g. query:read and person:read; the Scopes section of the docs' Connecting "
    "page lists them), and copy it "
    "immediately: PostHog shows it only once. It starts with phx_."
)
# A run of this many characters of a secret is masked wherever it appears: PostHog's 400s echo
# a rejected body value through pydantic, which cuts values longer than 50 characters to
# its first 24 and last 23 characters (a current 51-character phx_ key is echoed that way).
_FRAGMENT = 12


@dataclass(frozen=True, repr=False)
class Credentials:
    """A personal API key (or legacy username/password) and where it was found."""

    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    mode: AuthMode = "bearer"
    source: str = "argument"

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.api_key, self.password) if s)

    @property
    def masked(self) -> str:
        if self.mode == "basic":
            return f"{self.username} / ********"
        key = self.api_key or ""
        prefix = key[:4] if key[:4] in ("phx_", "pha_") else ""
        return f"{prefix}…{key[-4:]}" if len(key) >= 12 else "********"

    def scrub(self, text: str) -> str:
        """Remove every form of the secrets (raw, and as sent in a Basic header) from text,
        and every piece of one at least _FRAGMENT characters long (a truncated echo)."""
        forms = self._secret_forms()
        for secret in forms:
            text = text.replace(secret, "********")
        return _mask_fragments(text, [s for s in forms if len(s) >= _FRAGMENT])

    def _secret_forms(self) -> list[str]:
        forms = list(self.secrets)
        if self.username is not None and self.password:
            raw = f"{self.username}:{self.password}".encode()
            forms.append(base64.b64encode(raw).decode())
        return forms

    def __repr__(self) -> str:
        return f"Credentials(mode={self.mode!r}, key={self.masked!r}, source={self.source!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError(
            "posthog-pandas credentials cannot be pickled: they hold your PostHog key. "
            "Pickle the DataFrames instead."
        )


def _mask_fragments(text: str, secrets: list[str]) -> str:
    """`text` with every stretch made of _FRAGMENT-character pieces of a secret masked."""
    pieces = {s[i : i + _FRAGMENT] for s in secrets for i in range(len(s) - _FRAGMENT + 1)}
    spans: list[list[int]] = []
    for i in range(len(text) - _FRAGMENT + 1) if pieces else ():
        if text[i : i + _FRAGMENT] not in pieces:
            continue
        if spans and i <= spans[-1][1]:
            spans[-1][1] = i + _FRAGMENT  # overlaps the stretch before: extend it
        else:
            spans.append([i, i + _FRAGMENT])
    out, kept_from = [], 0
    for begin, end in spans:
        out += [text[kept_from:begin], "********"]
        kept_from = end
    return "".join(out) + text[kept_from:]


def check_api_key(key: str, *, source: str) -> str:
    """Reject keys that cannot read data, before any request is sent."""
    key = key.strip()
    if key.startswith("phc_"):
        raise CredentialsError(
            f"The key from {source} is a project API key (phc_…). Project keys are public and "
            "write-only: they send events but cannot read data. " + CREATE_KEY_HELP
        )
    if key.startswith("phs_"):
        raise CredentialsError(
            f"The key from {source} is a project secret key (phs_…), which PostHog accepts "
            "only for feature-flag evaluation, not for reading data. " + CREATE_KEY_HELP
        )
    if any(ch.isspace() for ch in key) or not key.isprintable():
        raise CredentialsError(
            f"The key from {source} contains spaces or control characters; copy it again "
            "without quotes or line breaks."
        )
    return key


@dataclass(frozen=True)
class Resolved:
    """The outcome of the credential chain: credentials plus host and project settings."""

    credentials: Credentials | None
    host: str
    host_source: str
    project_id: int | None
    project_source: str | None


Prompter = Callable[[str], "Credentials | None"]


def resolve(
    *,
    api_key: str | None = None,
    username: str | None = None,
    password: str | None = None,
    host: str | None = None,
    project_id: int | str | None = None,
    key_in: str = "header",
    environ: Mapping[str, str] | None = None,
    dotenv: bool | str | Path = True,
    prompt: bool | Prompter = True,
) -> Resolved:
    """Walk the chain: explicit arguments, environment, .env file, interactive prompt.

    The first source that has a key (or a username/password pair) wins; host and project id are
    taken from the first source that names them, with the default host last.
    """
    mode = _auth_mode(key_in, basic=bool(username or password))
    env = dict(os.environ if environ is None else environ)
    sources: list[tuple[str, Mapping[str, str | None]]] = [
        ("argument", _as_env(api_key, username, password, host, project_id)),
        ("environment", env),
    ]
    dotenv_path = _find_dotenv(dotenv)
    if dotenv_path is not None:
        sources.append((f".env file ({dotenv_path})", _read_dotenv(dotenv_path)))

    found_host, host_source = _first(sources, _config.ENV_HOST)
    normalized_host = _config.normalize_host(found_host or _config.DEFAULT_HOST)
    raw_project, project_source = _first(sources, _config.ENV_PROJECT_ID)
    project = _config.parse_project_id(raw_project, source=project_source or "argument")

    credentials = _credentials_from(sources, mode)
    if credentials is None and prompt:
        prompter = prompt if callable(prompt) else default_prompter()
        if prompter is not None:
            credentials = prompter(normalized_host)
    return Resolved(
        credentials=credentials,
        host=normalized_host,
        host_source=host_source or "default",
        project_id=project,
        project_source=project_source,
    )


def _auth_mode(key_in: str, *, basic: bool) -> AuthMode:
    if basic:
        return "basic"
    if key_in in ("header", "bearer"):
        return "bearer"
    if key_in == "body":
        return "body"
    raise ConfigurationError(
        f"key_in={key_in!r} is not supported; use key_in='header' (Authorization: Bearer, the "
        "default) or key_in='body' (personal_api_key in the request body)."
    )


def _as_env(
    api_key: str | None,
    username: str | None,
    password: str | None,
    host: str | None,
    project_id: int | str | None,
) -> dict[str, str | None]:
    return {
        _config.ENV_API_KEY: api_key,
        _config.ENV_USERNAME: username,
        _config.ENV_PASSWORD: password,
        _config.ENV_HOST: host,
        _config.ENV_PROJECT_ID: None if project_id is None else str(project_id),
    }


def _first(
    sources: list[tuple[str, Mapping[str, str | None]]], name: str
) -> tuple[str | None, str | None]:
    for source, values in sources:
        value = values.get(name)
        if value is not None and str(value).strip():
            return str(value), source
    return None, None


def _credentials_from(
    sources: list[tuple[str, Mapping[str, str | None]]], mode: AuthMode
) -> Credentials | None:
    for source, values in sources:
        key = (values.get(_config.ENV_API_KEY) or "").strip()
        user = (values.get(_config.ENV_USERNAME) or "").strip()
        password = values.get(_config.ENV_PASSWORD) or ""
        if mode == "basic" or (not key and user and password):
            if user and password:
                return Credentials(username=user, password=password, mode="basic", source=source)
            if user or password:
                missing = _config.ENV_PASSWORD if user else _config.ENV_USERNAME
                raise CredentialsError(
                    f"Username/password login from {source} is missing {missing}; "
                    "give both, or use a personal API key instead."
                )
            continue
        if key:
            return Credentials(api_key=check_api_key(key, source=source), mode=mode, source=source)
    return None


def _find_dotenv(dotenv: bool | str | Path) -> Path | None:
    """A .env path: the one given, or the nearest one from the working directory upward."""
    if dotenv is False:
        return None
    if dotenv is not True:
        path = Path(dotenv)
        if not path.is_file():
            raise ConfigurationError(f"dotenv={str(dotenv)!r}: no such file.")
        return path
    from dotenv import find_dotenv

    found = find_dotenv(usecwd=True)
    return Path(found) if found else None


def _read_dotenv(path: Path) -> dict[str, str | None]:
    # dotenv_values reads without touching os.environ, so the environment always wins.
    from dotenv import dotenv_values

    return dict(dotenv_values(path))


def missing_credentials_message(host: str) -> str:
    return (
        "No PostHog personal API key found. posthog-pandas looked, in this order, at:\n"
        "  1. arguments: posthog_pandas.connect(api_key='phx_...', host=..., project_id=...)\n"
        f"  2. environment variables: {_config.ENV_API_KEY}, {_config.ENV_HOST} "
        f"(default {_config.DEFAULT_HOST}), {_config.ENV_PROJECT_ID}\n"
        "  3. a .env file in the working directory or a parent, with the same variable names\n"
        "  4. an interactive prompt (notebook widget or terminal), which is unavailable here\n"
        f"Set {_config.ENV_API_KEY} and try again. " + CREATE_KEY_HELP + f" (Host in use: {host}.)"
    )


def default_prompter() -> Prompter | None:
    """getpass in a terminal; None where nobody can answer (CI, scripts without a TTY).

    In notebooks the connector shows a widget instead (see widgets.py), so this returns None.
    """
    if _in_notebook():
        return None
    if not (sys.stdin and sys.stdin.isatty()) or os.environ.get("CI"):
        return None
    return _getpass_prompter


def _getpass_prompter(host: str) -> Credentials | None:
    key = getpass.getpass(f"PostHog personal API key for {host} (input hidden): ")
    if not key.strip():
        return None
    return Credentials(api_key=check_api_key(key, source="prompt"), source="prompt")


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"

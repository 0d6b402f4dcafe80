"""No secret escapes: cache, DEBUG logs, reprs, errors (chained), exports, foreign origins.

A recognisable key and password are used everywhere; afterwards every artefact is searched for
them (and for the marker they share, which also catches wrong keys and the Basic header form).
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import shutil
import ssl
import subprocess
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import posthog_pandas as php
from posthog_pandas.server import ApiKey, Faults, LocalPostHog
from tests.reliability.helpers import connector

pytestmark = pytest.mark.integration

MARKER = "SECRETAUDIT"
KEY = "phx_SECRETAUDIT_" + "k3yChars0123456789abcdefghijkl"  # 30 characters after the marker
LIMITED_KEY = "phx_SECRETAUDIT_LIMITED_" + "x" * 22
WRONG_KEY = "phx_SECRETAUDIT_WRONG_" + "w" * 24
EMAIL = "audit@example.com"
PASSWORD = "pw-SECRETAUDIT-correct-horse-battery-staple"
WRONG_PASSWORD = "pw-SECRETAUDIT-wrong"
NEEDLES = (
    KEY,
    LIMITED_KEY,
    WRONG_KEY,
    PASSWORD,
    WRONG_PASSWORD,
    base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode(),
    MARKER,
)
AFTER, BEFORE = "2024-01-01", "2024-01-31"


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalPostHog]:
    keys = [ApiKey(KEY), ApiKey(LIMITED_KEY, scopes=("user:read",))]
    with LocalPostHog(persons=600, events=4000, seed=21, keys=keys) as server:
        yield server


@pytest.fixture(scope="module")
def legacy() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=250, events=500, seed=22, legacy=True, users={EMAIL: PASSWORD}) as s:
        yield s


@pytest.fixture(scope="module")
def https_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command line)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return directory / "cert.pem"


@pytest.fixture(scope="module")
def https_server(https_ca: Path) -> Iterator[str]:
    """An HTTPS origin with that certificate, answering /api/users/@me/ like PostHog."""
    body = json.dumps({"email": EMAIL, "team": {"id": 1, "project_id": 1, "name": "tls"}})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            payload = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(https_ca, https_ca.parent / "key.pem")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def connect_as(mode: str, srv: LocalPostHog, legacy: LocalPostHog, cache: Path | None) -> Any:
    if mode == "basic":
        return connector(legacy, cache, api_key=None, username=EMAIL, password=PASSWORD)
    return connector(srv, cache, api_key=KEY, key_in="header" if mode == "bearer" else "body")


def find_secrets(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [n for n in NEEDLES if n.encode() in data]


# -- foreign origins ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bearer", "body", "basic"])
def test_a_next_link_to_a_foreign_origin_is_refused_in_every_auth_mode(
    mode: str, server: LocalPostHog, legacy: LocalPostHog
) -> None:
    target = legacy if mode == "basic" else server
    ph = connect_as(mode, server, legacy, None)
    target.clear_log()
    target.set_faults(Faults(foreign_next=True, paths=("/person",)))
    try:
        with pytest.raises(php.PaginationError) as info:
            ph.persons()
    finally:
        target.set_faults(None)
    path = "/api/person/" if mode == "basic" else "/api/projects/1/persons/"
    assert str(info.value).startswith(f"Refusing to send a request to {target.foreign_url}{path}")
    assert str(info.value).endswith(
        f"it is outside the configured PostHog origin {target.url}, and following it would send "
        "your key there. If PostHog lives at that address, pass host=... (or POSTHOG_HOST) "
        "accordingly."
    )
    assert [r for r in target.foreign_requests if r.had_credentials] == []
    assert target.foreign_requests == []  # refused before any request, with or without a key
    expected_auth = {"bearer": "bearer", "body": "body", "basic": "basic"}[mode]
    assert {r.auth for r in target.requests} == {expected_auth}


# -- parameters and TLS -------------------------------------------------------------------------


def test_the_client_never_sends_token_or_api_key_parameters(
    server: LocalPostHog, tmp_path: Path
) -> None:
    for key_in in ("header", "body"):
        ph = connector(server, tmp_path / key_in, api_key=KEY, key_in=key_in)
        ph.persons()
        ph.events(after=AFTER, before=BEFORE)
        ph.query("select event, count() from events group by event")
        for name in ("cohorts", "feature_flags", "insights", "dashboards", "annotations"):
            getattr(ph, name)()
        ph.export("persons", tmp_path / f"{key_in}.csv")
        for bad in ("token", "api_key", "personal_api_key"):
            with pytest.raises(php.PaginationError, match=bad):
                ph.fetch("cohorts", **{bad: server.project_token()})
    assert len(server.requests) >= 16  # 8 kinds of request, in each mode
    for request in server.requests:
        assert not {"token", "api_key", "personal_api_key"} & set(request.params), request
        assert request.auth in ("bearer", "body"), request
    assert {r.auth for r in server.requests} == {"bearer", "body"}


def test_tls_verification_is_on_by_default(https_server: str, tmp_path: Path) -> None:
    with pytest.raises(php.TransportError) as info:
        php.connect(KEY, host=https_server, cache=False, dotenv=False, prompt=False,
                    retry=php.RetrySettings(attempts=0))  # fmt: skip
    assert str(info.value).startswith(
        f"The TLS certificate of {https_server} could not be verified (self-signed certificate)."
    )
    assert find_secrets(str(info.value)) == []


def test_turning_tls_verification_off_needs_an_argument_and_warns(
    https_server: str, https_ca: Path
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ph = php.connect(KEY, host=https_server, cache=False, dotenv=False, prompt=False,
                         verify=False)  # fmt: skip
    messages = [str(w.message) for w in caught]
    assert (
        "TLS certificate verification is off (verify=False): anyone on the network path can "
        "read your PostHog key. Use it only against a test server."
    ) in messages
    assert ph.me()["email"] == EMAIL
    # A CA bundle keeps verification on, silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trusted = php.connect(KEY, host=https_server, cache=False, dotenv=False, prompt=False,
                              verify=str(https_ca))  # fmt: skip
    assert trusted.settings.verify == str(https_ca)
    assert php.connect.__kwdefaults__["verify"] is True


# -- the audit ----------------------------------------------------------------------------------


class Collected:
    """Everything a user or a log could see: text of reprs, warnings, errors with their chains."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, label: str, text: str) -> None:
        self.texts.append((label, text))

    def error(self, label: str, call: Callable[[], Any], expected: type[BaseException]) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                call()
            except expected as exc:
                self.add(label, "".join(traceback.format_exception(exc)))
                self.add(label + " repr", repr(exc) + repr(exc.args))
                self.add(label + " attrs", repr(vars(exc)))
            else:
                raise AssertionError(f"{label}: no {expected.__name__}")
        for w in caught:
            self.add(label + " warning", str(w.message))


@pytest.fixture()
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """Everything logged at DEBUG (posthog_pandas, urllib3, requests, ...) into one file."""
    path = tmp_path / "debug.log"
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def exercise(ph: Any, mode: str, target: LocalPostHog, out: Path, seen: Collected) -> None:
    """Data, exports, reprs and every kind of error, for one connection."""
    persons = ph.persons()
    assert len(persons) == len(target.dataset().persons)
    if mode != "basic":
        ph.events(after=AFTER, before=BEFORE)
        ph.query("select event, count() from events group by event")
        ph.export("events", out / f"{mode}-events.parquet", after=AFTER, before=BEFORE)
        ph.export("events", out / f"{mode}-events.csv.gz", after=AFTER, before=BEFORE)
    ph.export("persons", out / f"{mode}-persons.csv")
    ph.export("persons", out / f"{mode}-persons.parquet")
    for label, text in {
        "repr(ph)": repr(ph),
        "html(ph)": ph._repr_html_(),
        "vars(ph)": repr(vars(ph)),
        "credentials": repr(ph._conn.http.credentials) + str(ph._conn.http.credentials),
        "fetcher": repr(ph._conn.fetcher),
        "settings": repr(ph.settings),
        "http": repr(vars(ph._conn.http)),
        "session": repr(vars(ph._conn.http.session)),
        "cache": repr(ph.cache) + repr(ph.cache.info()) + ph.cache.info()._repr_html_(),
        "persons frame": persons.to_string(),
    }.items():
        seen.add(f"{mode} {label}", text)

    seen.error(f"{mode} pickle", lambda: pickle.dumps(ph), TypeError)
    seen.error(
        f"{mode} pickle credentials", lambda: pickle.dumps(ph._conn.http.credentials), TypeError
    )
    seen.error(f"{mode} offline miss", lambda: connect_offline(ph).annotations(), php.CacheError)
    faults = {
        "malformed": (Faults(malformed_json=1.0), php.ResponseFormatError),
        "html": (Faults(html_login=1.0), php.ResponseFormatError),
        "reset": (Faults(reset_mid_body=1.0), php.TransportError),
        "502": (Faults(rate_502=1.0), php.ServerError),
        "hang": (Faults(hang_after=0), php.TransportError),
        "foreign": (Faults(foreign_next=True), php.PaginationError),
        "repeat": (Faults(repeat_next=True), php.PaginationError),
        # last: PostHog's 900 s wait holds every later request of this connection
        "429": (Faults(rate_429=1.0, retry_after=900), php.RateLimitError),
    }
    quick = connect_quick(ph, mode, target)
    for name, (fault, error) in faults.items():
        target.set_faults(fault)
        try:
            seen.error(f"{mode} {name}", lambda: quick.persons(cache=False), error)
            # A network failure with a stale copy in the cache: the warning names no secret.
            if name in ("reset", "502"):
                stale = quick.persons  # the pages were cached by the first pull, same scope
                seen.add(f"{mode} stale ok", repr(len(stale(refresh=False))))
        finally:
            target.set_faults(None)
    if mode != "basic":
        seen.error(
            f"{mode} bad hogql", lambda: ph.query("select nope from events limit 1"), php.QueryError
        )


def connect_offline(ph: Any) -> Any:
    return php.connect(
        ph._conn.http.credentials.api_key,
        username=ph._conn.http.credentials.username,
        password=ph._conn.http.credentials.password,
        host=ph.settings.host,
        cache_dir=ph.cache.directory,
        offline=True,
        key_in="body" if ph._conn.http.credentials.mode == "body" else "header",
        progress=False,
        dotenv=False,
        prompt=False,
    )


def connect_quick(ph: Any, mode: str, target: LocalPostHog) -> Any:
    creds = ph._conn.http.credentials
    return php.connect(
        creds.api_key,
        username=creds.username,
        password=creds.password,
        host=target.url,
        cache_dir=ph.cache.directory,
        key_in="body" if mode == "body" else "header",
        timeout=(2.0, 0.3),
        retry=php.RetrySettings(attempts=1, backoff_factor=0.01, jitter=0.0),
        progress=False,
        dotenv=False,
        prompt=False,
    )


def test_no_secret_in_cache_logs_reprs_errors_or_exports(
    server: LocalPostHog, legacy: LocalPostHog, tmp_path: Path, debug_log: Path
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "exports"
    out.mkdir()
    seen = Collected()
    for mode in ("bearer", "body", "basic"):
        ph = connect_as(mode, server, legacy, cache)
        exercise(ph, mode, legacy if mode == "basic" else server, out, seen)

    # Rejected credentials: the wrong secret is not echoed back either.
    seen.error(
        "wrong key",
        lambda: connector(server, cache, api_key=WRONG_KEY),
        php.AuthenticationError,
    )
    seen.error(
        "wrong password",
        lambda: connector(legacy, cache, api_key=None, username=EMAIL, password=WRONG_PASSWORD),
        php.AuthenticationError,
    )
    seen.error(
        "basic on current PostHog",
        lambda: connector(server, cache, api_key=None, username=EMAIL, password=PASSWORD),
        php.AuthenticationError,
    )
    seen.error(
        "missing scope",
        lambda: connector(server, cache, api_key=LIMITED_KEY).persons(),
        php.PermissionDeniedError,
    )

    assert find_secrets(f"planted {KEY} here") == [KEY, MARKER]  # the search itself works
    leaks = [label for label, text in seen.texts if find_secrets(text)]
    assert leaks == []
    assert len(seen.texts) > 100
    files = [p for p in (*cache.rglob("*"), *out.rglob("*")) if p.is_file()]
    assert any(p.suffix == ".parquet" for p in cache.rglob("*"))  # frames were cached too
    assert {p.suffix for p in out.iterdir()} >= {".csv", ".parquet", ".gz"}
    assert [str(p) for p in files if find_secrets(p.read_bytes())] == []
    log = debug_log.read_text()
    assert "urllib3.connectionpool DEBUG" in log and "posthog_pandas.http DEBUG" in log
    assert find_secrets(log) == []

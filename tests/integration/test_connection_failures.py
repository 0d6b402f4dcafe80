"""Failures no retry can fix fail at the first attempt, with advice; a refused connection gets
a few seconds of retries; all over real sockets (a local TLS listener, a closed port, a host
under the reserved .invalid TLD), counting attempts rather than timing them."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

import posthog_pandas as php
from posthog_pandas import _config
from posthog_pandas._credentials import Credentials
from posthog_pandas._http import HttpClient

pytestmark = pytest.mark.integration

KEY = "phx_connection_failures_" + "k" * 24


class _Answer(BaseHTTPRequestHandler):
    """Answers every GET with the same small JSON object."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass


class _TLSServer(ThreadingHTTPServer):
    """HTTPS with a certificate from a test CA; counts the TLS handshakes clients attempted."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.context = context
        self.handshakes = 0

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        self.handshakes += 1
        try:
            return self.context.wrap_socket(sock, server_side=True), address
        except (ssl.SSLError, OSError):
            sock.close()
            raise


@dataclass
class TLSServer:
    url: str
    ca_file: Path
    server: _TLSServer


@pytest.fixture()
def tls_server(tmp_path: Path) -> Iterator[TLSServer]:
    """A local HTTPS server whose certificate comes from a CA no system trusts."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = _TLSServer(context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TLSServer(f"https://127.0.0.1:{server.server_address[1]}", ca_file, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def client_for(host: str, *, verify: bool | str = True) -> tuple[HttpClient, list[float]]:
    """A transport with the default retry policy and a sleep that only records the waits."""
    sleeps: list[float] = []
    settings = _config.Settings(host=host, verify=verify)
    client = HttpClient(settings, Credentials(api_key=KEY), sleep=sleeps.append)
    return client, sleeps


def test_an_untrusted_certificate_fails_at_the_first_attempt_with_advice(
    tls_server: TLSServer,
) -> None:
    with pytest.raises(php.TransportError) as info:
        php.connect(KEY, host=tls_server.url, cache=False, dotenv=False, prompt=False)
    assert str(info.value) == (
        f"The TLS certificate of {tls_server.url} could not be verified (unable to get local "
        "issuer certificate). If your PostHog uses a certificate from a private CA, pass that "
        'CA\'s bundle: connect(verify="/path/ca.pem"). If the name does not match, check '
        f"POSTHOG_HOST. Not retried. (GET {tls_server.url}/api/users/@me/)"
    )
    assert info.value.retryable is False
    assert tls_server.server.handshakes == 1


def test_the_private_cas_bundle_makes_the_same_server_work(tls_server: TLSServer) -> None:
    client, _ = client_for(tls_server.url, verify=str(tls_server.ca_file))
    assert client.send("GET", "/api/ping/").data == {"ok": True}
    assert client.stats.requests == 1


def test_a_bundle_that_does_not_vouch_for_the_certificate_says_so(
    tls_server: TLSServer, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    client, sleeps = client_for(tls_server.url, verify=str(other))
    with pytest.raises(php.TransportError) as info:
        client.send("GET", "/api/ping/")
    assert f"The CA bundle you passed (verify='{other}') does not vouch for it" in str(info.value)
    assert client.stats.requests == 1 and sleeps == []


def test_a_host_name_that_does_not_resolve_fails_at_once() -> None:
    client, sleeps = client_for("https://posthog.invalid")
    with pytest.raises(php.TransportError) as info:
        client.send("GET", "/api/users/@me/")
    assert str(info.value) == (
        "The host name posthog.invalid could not be resolved. Check POSTHOG_HOST (now "
        "https://posthog.invalid) for a typo, and that this machine is online; not retried. "
        "(GET https://posthog.invalid/api/users/@me/)"
    )
    assert client.stats.requests == 1 and sleeps == []


def test_a_refused_connection_gets_a_few_seconds_of_retries() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    client, sleeps = client_for(url)
    with pytest.raises(php.TransportError) as info:
        client.send("GET", "/api/users/@me/")
    defaults = _config.RetrySettings()
    assert client.stats.requests == defaults.connect_attempts + 1 == 4
    # urllib3's backoff: the first retry at once, then 1 s and 2 s, plus up to 0.25 s jitter
    assert len(sleeps) == 3 and sum(sleeps) <= 3 + 2 * defaults.jitter
    assert str(info.value) == (
        f"{url} refused the connection: nothing listens at that address and port. Check "
        f"POSTHOG_HOST (and its port), or start the server. (GET {url}/api/users/@me/) "
        "(gave up after 4 attempts)"
    )

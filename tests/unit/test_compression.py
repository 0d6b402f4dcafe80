"""connect(compression=...): which Accept-Encoding each connection sends."""

from __future__ import annotations

import pytest

import posthog_pandas as php
from posthog_pandas._config import accept_encoding
from tests.conftest import MockConnect


@pytest.mark.parametrize(
    ("compression", "hostname", "sent"),
    [
        ("auto", "127.0.0.1", "identity"),  # loopback: gzip costs CPU and saves no time
        ("auto", "localhost", "identity"),
        ("auto", "us.posthog.com", "gzip"),
        ("gzip", "127.0.0.1", "gzip"),  # a Cloud-like benchmark on loopback asks for gzip
        ("identity", "us.posthog.com", "identity"),
    ],
)
def test_accept_encoding_follows_the_setting(compression: str, hostname: str, sent: str) -> None:
    assert accept_encoding(compression, hostname) == sent


@pytest.mark.parametrize(("compression", "sent"), [("auto", "gzip"), ("identity", "identity")])
def test_every_request_carries_it(mock_connect: MockConnect, compression: str, sent: str) -> None:
    ph, adapter = mock_connect(compression=compression)
    adapter.register_uri("GET", "https://ph.test/api/projects/3/cohorts/", json={"results": []})
    ph.cohorts()
    assert [r.headers["Accept-Encoding"] for r in adapter.request_history] == [sent, sent]


def test_an_unknown_compression_is_refused_before_any_request() -> None:
    with pytest.raises(php.ConfigurationError) as info:
        php.connect("phx_" + "a" * 40, host="https://ph.test", compression="br")
    assert str(info.value) == (
        "compression='br' is not supported; use one of 'auto', 'gzip', 'identity' ('auto': "
        "plain bodies from a loopback host, gzip from any other)."
    )

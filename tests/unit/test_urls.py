"""One canonical form and one redaction for every URL the library compares or shows."""

from __future__ import annotations

from posthog_pandas._urls import canonical_url, redact_url


def test_canonical_url_is_equal_for_equal_requests() -> None:
    assert canonical_url("HTTPS://Us.PostHog.com:443/api/x/?b=1&a=2#top", {"c": True}) == (
        "https://us.posthog.com/api/x?a=2&b=1&c=True"
    )
    assert canonical_url("https://h/a?b=1&a=2") == canonical_url("https://h/a/", {"a": 2, "b": 1})
    assert canonical_url("https://[::1]:8000/a/") == "https://[::1]:8000/a"


def test_redact_url_masks_every_secret_name_and_drops_userinfo() -> None:
    url = "https://u:p@h.com/api/x/?personal_api_key=phx_1&token=t&API_KEY=k&key=k&password=p&n=5#f"
    masked = "%2A%2A%2A%2A%2A%2A%2A%2A"
    assert redact_url(url) == (
        f"https://h.com/api/x/?personal_api_key={masked}&token={masked}&API_KEY={masked}"
        f"&key={masked}&password={masked}&n=5"
    )
    assert redact_url("http://[bad") == "<unparseable url>"

"""How long a remote PostHog takes: a per-query and per-row delay, a per-list-request delay and
a bandwidth cap per response. Off by default (tests and the demo run at loopback speed);
`LATENCY_PROFILES["cloud"]` stands for PostHog Cloud seen over the internet."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LATENCY_PROFILES", "Latency", "latency_named"]

_CHUNK = 64 * 1024  # bytes written between bandwidth pauses


@dataclass(frozen=True)
class Latency:
    """Delays added by the local server; zero everywhere means loopback speed."""

    per_query: float = 0.0  # seconds per /query/ answer computed (ClickHouse time, queueing)
    per_row: float = 0.0  # seconds per result row of a computed query
    per_list: float = 0.0  # seconds per request to any other API endpoint
    bandwidth: float | None = None  # bytes per second per response body; None: unlimited

    @property
    def active(self) -> bool:
        return bool(self.per_query or self.per_row or self.per_list or self.bandwidth)

    def query_delay(self, rows: int) -> float:
        """Seconds a computed query holds its slot before answering."""
        return self.per_query + self.per_row * rows

    def write(
        self,
        write: Callable[[bytes], object],
        body: bytes,
        wait: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Send `body` no faster than the bandwidth cap, in chunks."""
        if not self.bandwidth:
            write(body)
            return
        started = clock()
        for start in range(0, len(body), _CHUNK):
            chunk = body[start : start + _CHUNK]
            write(chunk)
            ahead = started + (start + len(chunk)) / self.bandwidth - clock()
            if ahead > 0:
                wait(ahead)


# The starting figures (issue 25): 1.0 s per query plus 10 us per row returned, 150 ms per
# list request, 25 MB/s per response. docs/local-server.md says where they come from.
LATENCY_PROFILES: dict[str, Latency] = {
    "none": Latency(),
    "cloud": Latency(per_query=1.0, per_row=10e-6, per_list=0.15, bandwidth=25e6),
}


def latency_named(value: Latency | str | None) -> Latency:
    """A Latency from a profile name, a Latency, or None (loopback speed)."""
    if value is None:
        return Latency()
    if isinstance(value, Latency):
        return value
    if value in LATENCY_PROFILES:
        return LATENCY_PROFILES[value]
    names = ", ".join(repr(n) for n in LATENCY_PROFILES)
    raise ValueError(f"latency={value!r} is not a profile; use one of {names} or a Latency(...).")

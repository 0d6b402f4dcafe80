"""`posthog-pandas demo`: the whole product against the embedded local server, in under a minute."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import pandas as pd

from posthog_pandas._dates import hogql_literal

DAILY_SQL = """
SELECT toDate(timestamp) AS day, event, count() AS events
FROM events
WHERE timestamp >= toDateTime64({start}, 6, 'UTC') AND timestamp < toDateTime64({end}, 6, 'UTC')
GROUP BY day, event
ORDER BY day, event
LIMIT 50000
"""

REAL_POSTHOG_HINT = """\
Same code, your own data:
  export POSTHOG_PERSONAL_API_KEY=phx_...      # Settings → Personal API keys → Create key
  export POSTHOG_HOST=https://us.posthog.com   # or https://eu.posthog.com, or your own host
  python -c "import posthog_pandas as php; print(php.connect().persons().head())"
"""


def run_demo(
    *,
    persons: int = 5_000,
    events: int = 100_000,
    seed: int = 42,
    out: Path = Path("posthog-demo"),
    stream: TextIO = sys.stdout,
) -> int:
    """Start the local server, pull persons, events and a HogQL aggregate, write CSVs."""
    import posthog_pandas as php
    from posthog_pandas.server import LocalPostHog

    def say(text: str = "") -> None:
        print(text, file=stream, flush=True)

    with (
        pd.option_context("display.width", 120, "display.max_columns", 8),
        tempfile.TemporaryDirectory(prefix="posthog-pandas-demo-cache-") as cache_dir,
    ):
        started = time.perf_counter()
        say(
            f"Starting the embedded PostHog-compatible server ({persons:,} persons, "
            f"{events:,} events)..."
        )
        with LocalPostHog(persons=persons, events=events, seed=seed) as server:
            say(
                f"  listening on {server.url} (project {server.project_id}); "
                f"ready in {time.perf_counter() - started:.1f} s"
            )
            ph = php.connect(
                server.api_key,
                host=server.url,
                cache_dir=cache_dir,
                progress=False,
                dotenv=False,
                prompt=False,
            )
            say()
            say(repr(ph))
            start, end = server.time_range()

            people = _timed(say, "persons", ph.persons)
            say(
                people[["id", "created_at", "properties.email", "properties.plan"]]
                .head()
                .to_string()
            )
            say()
            raw = _timed(
                say, "events (cold: over HTTP)", lambda: ph.events(after=start, before=end)
            )
            _timed(
                say,
                "events (warm: from the on-disk cache)",
                lambda: ph.events(after=start, before=end),
            )
            say(
                raw[["timestamp", "event", "distinct_id", "properties.$browser"]].head().to_string()
            )
            say()
            # Instants, not wall times: PostHog reads a bare string compared with a DateTime
            # in the project's timezone. toDate() then counts the project's local days.
            values = {"start": hogql_literal(start), "end": hogql_literal(end)}
            daily = _timed(
                say, "HogQL: events per day by event name", lambda: ph.query(DAILY_SQL, values)
            )
            say(daily.head(8).to_string())

            out.mkdir(parents=True, exist_ok=True)
            for name, frame in (("persons", people), ("events", raw), ("events_per_day", daily)):
                path = out / f"{name}.csv"
                frame.to_csv(path, index=False)
                say(f"wrote {path} ({len(frame):,} rows, {path.stat().st_size:,} bytes)")
            say()
            say(
                f"Requests sent: {ph.request_stats.requests}, bytes received: "
                f"{ph.request_stats.bytes:,}. Demo finished in "
                f"{time.perf_counter() - started:.1f} s."
            )
            say()
            say(REAL_POSTHOG_HINT)
            # The cached frames' Parquet copies are written before the temporary cache goes.
            ph.cache.close()
    return 0


def _timed(
    say: Callable[[str], None], label: str, call: Callable[[], pd.DataFrame]
) -> pd.DataFrame:
    began = time.perf_counter()
    frame = call()
    say(
        f"{label}: {frame.shape[0]:,} rows x {frame.shape[1]} columns "
        f"in {time.perf_counter() - began:.2f} s"
    )
    return frame

"""The raw transfer: replay exactly the HTTP requests posthog-pandas sent, read and drop bodies.

Reads the request log a cold posthog-pandas run recorded (`--replay FILE`) and sends the same
requests (method, URL, headers including Accept-Encoding, body) on one plain requests.Session;
with `--concurrency N`, N at a time in the recorded order, one session per thread (under the
Cloud-like profile the floor of a pull that uses PostHog's 3 query slots: benchmarks/cloud.py).
Each body is read in one call, as posthog-pandas reads it (`iter_content(chunk_size=None)`):
`response.content` reads 10 kB at a time, 35-48 ms of Python per 14 MB page, which made this
floor slower than the client it bounds. Nothing is decoded or kept: this is the floor no
client on this server can beat without fetching fewer bytes. The ids check does not apply (no
rows are built).
"""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _common
import requests


def main() -> None:
    p = _common.parser(__doc__ or "")
    p.add_argument("--replay", required=True, help="request log written by posthog_pandas_sys")
    p.add_argument("--concurrency", type=int, default=1, help="requests in flight at once")
    args = p.parse_args()
    log = json.loads(Path(args.replay).read_text(encoding="utf-8"))
    prepared = [
        (r["method"], r["url"], r["headers"], base64.b64decode(r["body"]) if r["body"] else None)
        for r in log
    ]
    sessions = threading.local()

    def transfer(request: tuple[str, str, dict[str, str], bytes | None]) -> int:
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()
        method, url, headers, body = request
        response = sessions.session.request(
            method, url, headers=headers, data=body, timeout=300, stream=True
        )
        size = len(b"".join(response.iter_content(chunk_size=None)))
        response.raise_for_status()
        return size

    clock = _common.Clock()
    if args.concurrency <= 1:
        total = sum(transfer(request) for request in prepared)
    else:
        with ThreadPoolExecutor(args.concurrency) as pool:
            total = sum(pool.map(transfer, prepared))
    wall = clock.stop()
    name = "raw transfer (floor)"
    if args.concurrency > 1:
        name = f"raw transfer, {args.concurrency} at a time (floor)"
    _common.emit(
        args, name, rows=None, wall=wall, rss_mb=_common.peak_rss_mb(),
        ids_file=None, requests=len(prepared), bytes_received=total,
    )  # fmt: skip


if __name__ == "__main__":
    main()

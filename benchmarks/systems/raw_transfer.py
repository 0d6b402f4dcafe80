"""The raw transfer: replay exactly the HTTP requests posthog-pandas sent, read and drop bodies.

Reads the request log a cold posthog-pandas run recorded (`--replay FILE`) and sends the same
requests (method, URL, headers including Accept-Encoding, body) on one plain requests.Session.
Each body is read in one call, as posthog-pandas reads it (`iter_content(chunk_size=None)`):
`response.content` reads 10 kB at a time, 35-48 ms of Python per 14 MB page, which made this
floor slower than the client it bounds. Nothing is decoded or kept: this is the floor no
client on this server can beat without fetching fewer bytes. The ids check does not apply (no
rows are built).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import _common
import requests


def main() -> None:
    p = _common.parser(__doc__ or "")
    p.add_argument("--replay", required=True, help="request log written by posthog_pandas_sys")
    args = p.parse_args()
    log = json.loads(Path(args.replay).read_text(encoding="utf-8"))
    prepared = [
        (r["method"], r["url"], r["headers"], base64.b64decode(r["body"]) if r["body"] else None)
        for r in log
    ]
    session = requests.Session()
    total = 0
    clock = _common.Clock()
    for method, url, headers, body in prepared:
        response = session.request(
            method, url, headers=headers, data=body, timeout=300, stream=True
        )
        total += len(b"".join(response.iter_content(chunk_size=None)))
        response.raise_for_status()
    wall = clock.stop()
    _common.emit(
        args, "raw transfer (floor)", rows=None, wall=wall, rss_mb=_common.peak_rss_mb(),
        ids_file=None, requests=len(prepared), bytes_received=total,
    )  # fmt: skip


if __name__ == "__main__":
    main()

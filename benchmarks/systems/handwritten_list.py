"""The hand-written list loop most notebooks use: requests, follow `next`, pd.json_normalize.

W1: GET /persons/?limit=1000. W2: GET /events/?after=..&before=..&limit=1000 (the most the
events list gives per request). requests' default Accept-Encoding (gzip) is used, as in a
notebook. Timestamps are parsed so the frame matches what posthog-pandas returns.
"""

from __future__ import annotations

import _common
import pandas as pd
import requests


def fetch_all(session: requests.Session, url: str, params: dict[str, str] | None) -> list[dict]:
    rows: list[dict] = []
    while url:
        response = session.get(url, params=params, timeout=120)
        response.raise_for_status()
        page = response.json()
        rows.extend(page["results"])
        url, params = page.get("next"), None  # `next` carries the query string
    return rows


def main() -> None:
    args = _common.parser(__doc__ or "").parse_args()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {args.key}"
    base = f"{args.url}/api/projects/{args.project_id}"
    clock = _common.Clock()
    if args.workload == "W1":
        rows = fetch_all(session, f"{base}/persons/", {"limit": "1000"})
        df = pd.json_normalize(rows)
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
        id_column = "id"
    else:
        params = {"after": args.after, "before": args.before, "limit": "1000"}
        rows = fetch_all(session, f"{base}/events/", params)
        df = pd.json_normalize(rows)
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
        id_column = "id"
    del rows
    wall = clock.stop()
    _common.emit_frame(args, "hand-written list loop", df, id_column, "handwritten-list", wall)


if __name__ == "__main__":
    main()

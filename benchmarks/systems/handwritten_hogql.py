"""The strongest hand-written events loop: the query API, keyset pages of 50,000, then flatten.

POST /api/projects/<id>/query/ with `SELECT ... ORDER BY timestamp, uuid LIMIT 50000`, then
`WHERE (timestamp, uuid) > (last)` for the next page; every row becomes a dict with its
properties parsed (json.loads), then pd.json_normalize and typed timestamps, as posthog-pandas
returns. `--encoding gzip` is requests' default; `--encoding identity` asks for plain bodies,
as posthog-pandas does over loopback.
"""

from __future__ import annotations

import json

import _common
import pandas as pd
import requests

COLUMNS = ["uuid", "event", "distinct_id", "timestamp", "properties", "elements_chain", "person_id"]
PAGE = 50_000


def page_query(after: str, before: str, last: tuple[str, str] | None) -> dict:
    where = (
        "timestamp >= toDateTime64({after}, 6, 'UTC') "
        "AND timestamp < toDateTime64({before}, 6, 'UTC')"
    )
    values = {"after": after, "before": before}
    if last is not None:
        where += " AND (timestamp, uuid) > (toDateTime64({ts}, 6, 'UTC'), toUUID({uuid}))"
        values |= {"ts": last[0].replace("T", " ").replace("Z", ""), "uuid": last[1]}
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM events WHERE {where} "
        f"ORDER BY timestamp, uuid LIMIT {PAGE}"
    )
    return {"query": {"kind": "HogQLQuery", "query": sql, "values": values}}


def main() -> None:
    p = _common.parser(__doc__ or "")
    p.add_argument("--encoding", choices=["gzip", "identity"], default="gzip")
    args = p.parse_args()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {args.key}"
    if args.encoding == "identity":
        session.headers["Accept-Encoding"] = "identity"
    url = f"{args.url}/api/projects/{args.project_id}/query/"
    after = args.after.replace("T", " ").replace("Z", "")
    before = args.before.replace("T", " ").replace("Z", "")
    clock = _common.Clock()
    rows: list[list] = []
    columns: list[str] = COLUMNS
    last = None
    while True:
        response = session.post(url, json=page_query(after, before, last), timeout=300)
        response.raise_for_status()
        data = response.json()
        columns = data["columns"]
        rows.extend(data["results"])
        if len(data["results"]) < PAGE:
            break
        ts, uid = columns.index("timestamp"), columns.index("uuid")
        last = (data["results"][-1][ts], data["results"][-1][uid])
    props = columns.index("properties")
    records = []
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        record["properties"] = json.loads(row[props]) if row[props] else {}
        records.append(record)
    del rows
    df = pd.json_normalize(records)
    del records
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    wall = clock.stop()
    system = f"hand-written HogQL loop ({args.encoding})"
    _common.emit_frame(args, system, df, "uuid", f"handwritten-hogql-{args.encoding}", wall)


if __name__ == "__main__":
    main()

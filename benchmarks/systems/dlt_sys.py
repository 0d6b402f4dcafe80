"""dlt's `rest_api` source, iterated to records (no destination), then pd.json_normalize.

Runs in its own virtual environment (.peers/dlt). Client: base_url
`{host}/api/projects/{id}/`, bearer auth, the `json_link` paginator on `next`, records under
`results`; W1 reads persons (limit=1000), W2 the events list (after, before, limit=1000), the
same requests as the hand-written list loop.
"""

from __future__ import annotations

import os

import _common
import pandas as pd


def main() -> None:
    args = _common.parser(__doc__ or "").parse_args()
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    from dlt.sources.rest_api import rest_api_source

    if args.workload == "W1":
        name, params = "persons", {"limit": 1000}
    else:
        name, params = "events", {"after": args.after, "before": args.before, "limit": 1000}
    clock = _common.Clock()
    source = rest_api_source(
        {
            "client": {
                "base_url": f"{args.url}/api/projects/{args.project_id}/",
                "auth": {"type": "bearer", "token": args.key},
                "paginator": {"type": "json_link", "next_url_path": "next"},
            },
            "resource_defaults": {"endpoint": {"data_selector": "results"}},
            "resources": [{"name": name, "endpoint": {"path": f"{name}/", "params": params}}],
        }
    )
    rows = list(source.resources[name])
    df = pd.json_normalize(rows)
    del rows
    column = "created_at" if name == "persons" else "timestamp"
    df[column] = pd.to_datetime(df[column], utc=True, format="ISO8601")
    _common.emit_frame(args, "dlt rest_api", df, "id", "dlt", clock.stop())


if __name__ == "__main__":
    main()

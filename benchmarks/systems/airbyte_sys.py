"""airbyte-source-posthog: `source-posthog read` in its own virtual environment, then normalize.

The connector writes Airbyte messages (JSON lines) to a file, as `source-posthog read > x.jsonl`
would; this process then reads the RECORD lines of the stream and builds a DataFrame with
pd.json_normalize and typed timestamps. Wall time covers both steps (connector start-up
included: it is part of what a user waits for). `rss_mb` is the larger of the connector's and
this process's peaks (they do not overlap: the file sits between them).
"""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

import _common
import pandas as pd


def main() -> None:
    p = _common.parser(__doc__ or "")
    p.add_argument("--connector", required=True, help="path to the source-posthog executable")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stream = "persons" if args.workload == "W1" else "events"
    config = {
        "api_key": args.key,
        "start_date": args.after,
        "base_url": args.url,
        "events_time_step": 30,
    }
    sync = (
        {"sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
        if stream == "persons"
        else {"sync_mode": "incremental", "cursor_field": ["timestamp"],
              "destination_sync_mode": "append"}
    )  # fmt: skip
    catalog = {
        "streams": [
            {
                "stream": {
                    "name": stream,
                    "json_schema": {},
                    "supported_sync_modes": ["full_refresh", "incremental"],
                },
                **sync,
            }
        ]
    }
    config_path = out / f"airbyte-config-{args.tag}.json"
    catalog_path = out / f"airbyte-catalog-{args.tag}.json"
    records_path = out / f"airbyte-{args.workload}-{args.tag}.jsonl"
    config_path.write_text(json.dumps(config))
    catalog_path.write_text(json.dumps(catalog))
    clock = _common.Clock()
    with records_path.open("wb") as fh:
        proc = subprocess.run(
            [args.connector, "read", "--config", str(config_path), "--catalog", str(catalog_path)],
            stdout=fh,
            stderr=subprocess.PIPE,
            check=False,
        )
    rows = []
    errors = []
    with records_path.open("rb") as fh:
        for line in fh:
            if not line.startswith(b"{"):
                continue
            message = json.loads(line)
            if message.get("type") == "RECORD" and message["record"]["stream"] == stream:
                rows.append(message["record"]["data"])
            elif message.get("type") == "TRACE" and message.get("trace", {}).get("error"):
                errors.append(message["trace"]["error"].get("message"))
    df = pd.json_normalize(rows)
    del rows
    column = "created_at" if stream == "persons" else "timestamp"
    if column in df:
        df[column] = pd.to_datetime(df[column], utc=True, format="ISO8601")
    wall = clock.stop()
    rss = max(_common.peak_rss_mb(), _common.peak_rss_mb(resource.RUSAGE_CHILDREN))
    ids = _common.write_ids(
        args.out, f"airbyte-{args.workload}-{args.tag}", df["id"] if "id" in df else []
    )
    records_path.unlink()
    _common.emit(
        args, "airbyte-source-posthog", rows=len(df), wall=wall, rss_mb=rss, ids_file=ids,
        df_bytes=_common.deep_bytes(df), exit_code=proc.returncode, errors=errors[:3],
        stderr=proc.stderr.decode(errors="replace")[-500:] if proc.returncode else "",
    )  # fmt: skip


if __name__ == "__main__":
    main()

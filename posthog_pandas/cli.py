"""The `posthog-pandas` command line: subcommands dispatched from one argparse parser."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Sequence

from posthog_pandas._extras import MissingExtraError
from posthog_pandas.export import (
    add_export_parser,
    add_query_parser,
    run_export_command,
    run_query_command,
)

__all__ = ["main"]


def _wait_forever() -> None:
    threading.Event().wait()


def _serve(args: argparse.Namespace) -> int:
    """Run the embedded local PostHog until Ctrl-C."""
    from posthog_pandas.server import LocalPostHog

    srv = LocalPostHog(
        persons=args.persons,
        events=args.events,
        seed=args.seed,
        legacy=args.legacy,
        port=args.port,
        timezone=args.timezone,
    )
    srv.start()
    print(f"Local PostHog listening on {srv.url}")
    print(f"Project id: {srv.project_id}")
    print(f"Personal API key (demo): {srv.api_key}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        _wait_forever()
    except KeyboardInterrupt:
        print("\nStopping.", file=sys.stderr)
    finally:
        srv.close()
    return 0


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve", help="run a local PostHog-compatible server with demo data (server extra)"
    )
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    p.add_argument("--persons", type=int, default=2000, help="persons to generate")
    p.add_argument("--events", type=int, default=20000, help="events to generate")
    p.add_argument("--seed", type=int, default=42, help="seed of the generated data and key")
    p.add_argument("--legacy", action="store_true", help="also accept Basic auth and old routes")
    p.add_argument(
        "--timezone", default="UTC", help="the projects' timezone (IANA name, e.g. Asia/Kolkata)"
    )


def _demo(args: argparse.Namespace) -> int:
    """Pull persons, events and a HogQL aggregate from the embedded server; write CSVs."""
    from pathlib import Path

    from posthog_pandas.demo import run_demo

    return run_demo(persons=args.persons, events=args.events, seed=args.seed, out=Path(args.out))


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="try posthog-pandas end to end against the embedded server (server extra)"
    )
    p.add_argument("--persons", type=int, default=5_000, help="persons to generate")
    p.add_argument("--events", type=int, default=100_000, help="events to generate")
    p.add_argument("--seed", type=int, default=42, help="seed of the generated data")
    p.add_argument("--out", default="posthog-demo", help="folder for the CSV files")


# Subcommand name -> (parser builder, runner). Add new subcommands here.
COMMANDS: dict[
    str,
    tuple[
        Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None],
        Callable[[argparse.Namespace], int],
    ],
] = {
    "demo": (_add_demo, _demo),
    "export": (add_export_parser, run_export_command),
    "query": (add_query_parser, run_query_command),
    "serve": (_add_serve, _serve),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posthog-pandas", description="Get PostHog analytics data into pandas."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _, run = COMMANDS[args.command]
    try:
        return run(args)
    except MissingExtraError as exc:  # `serve` and `demo` without the server extra
        print(f"posthog-pandas {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

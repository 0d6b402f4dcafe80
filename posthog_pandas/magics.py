"""IPython magics: `%posthog` / `%%posthog`, their argument parsing, and the default connection.

The only module that uses IPython's magic machinery (widgets.py only borrows `display`). The
magics call the public API (accessors, `ph.query`) and never fetch anything themselves; library
errors become one-line `UsageError`s here, at the notebook edge, with the original exception
kept as `__cause__`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import difflib
import getpass
import re
import shlex
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, NoReturn

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from traitlets import Bool, Int
from traitlets.config import Configurable

from posthog_pandas import _credentials, _insight_magics
from posthog_pandas._dates import hogql_literal
from posthog_pandas._display import (
    connected_message,
    first_line,
    project_name,
    readable_user,
    whoami,
)
from posthog_pandas._registry import NAMES, RESOURCES, Resource, resource_named
from posthog_pandas._session import get_connection, reset, set_connection
from posthog_pandas.cache import CacheStore, default_cache_dir
from posthog_pandas.client import PostHog, connect
from posthog_pandas.events import EmptyWindowWarning, window_note
from posthog_pandas.exceptions import PostHogError
from posthog_pandas.export import write_frame

__all__ = [
    "PostHogMagics",
    "connected_message",
    "get_connection",
    "load_ipython_extension",
    "project_name",
    "reset",
    "set_connection",
    "whoami",
]

# -- argument parsing ----------------------------------------------------------------------------

SUBCOMMANDS = ("cache", "connect", "help", "login", "use", "whoami", *_insight_magics.INSIGHTS)
_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


class MagicArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (with "Did you mean") instead of exiting the kernel."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        super().__init__(prog=prog, add_help=False, allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError(f"{self.prog}: {message or 'invalid arguments'}")

    def parse_line(self, args: Sequence[str]) -> argparse.Namespace:
        """Parse, and name the closest known flag for each unknown one."""
        parsed, extra = self.parse_known_args(list(args))
        if extra:
            raise UsageError(f"{self.prog}: {unknown_message(extra[0], self._known_flags())}")
        return parsed

    def _known_flags(self) -> list[str]:
        return [flag for action in self._actions for flag in action.option_strings]


def unknown_message(token: str, choices: Sequence[str]) -> str:
    kind = "option" if token.startswith("-") else "argument"
    close = difflib.get_close_matches(token, choices, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unrecognized {kind} {token!r}.{hint} See %posthog help."


def _add_output_flags(parser: MagicArgumentParser) -> None:
    parser.add_argument("--csv", metavar="PATH", help="also write the result to a CSV file")
    parser.add_argument("--parquet", metavar="PATH", help="also write the result to Parquet")
    parser.add_argument("--refresh", action="store_true", help="ignore cached answers")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")


def resource_parser() -> MagicArgumentParser:
    parser = MagicArgumentParser("%posthog RESOURCE")
    parser.add_argument("id", nargs="?", metavar="ID", help="cohort id, insight id, group type")
    parser.add_argument("--after", help="events from this date (ISO date or '-7d')")
    parser.add_argument("--before", help="events before this date")
    parser.add_argument("--event", action="append", help="only this event name (repeatable)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N rows")
    parser.add_argument("-o", "--out", metavar="VAR", help="store the DataFrame in VAR")
    _add_output_flags(parser)
    return parser


def cell_parser() -> MagicArgumentParser:
    parser = MagicArgumentParser("%%posthog")
    parser.add_argument("var", nargs="?", metavar="VAR", help="store the DataFrame in VAR")
    _add_output_flags(parser)
    return parser


def connect_parser() -> MagicArgumentParser:
    parser = MagicArgumentParser("%posthog connect")
    parser.add_argument("--host", help="https://us.posthog.com, https://eu.posthog.com, or yours")
    parser.add_argument("--project-id", help="the project to read (default: your current one)")
    return parser


def cache_parser() -> MagicArgumentParser:
    parser = MagicArgumentParser("%posthog cache")
    parser.add_argument("action", choices=("info", "clear"), help="show or empty the cache")
    parser.add_argument("--resource", help="only this resource (e.g. persons, query)")
    return parser


# -- errors ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def notebook_errors() -> Iterator[None]:
    """PostHogError → a one-line UsageError (first line of the message), original as __cause__."""
    try:
        yield
    except PostHogError as exc:
        raise UsageError(first_line(exc)) from exc


# -- the magics ------------------------------------------------------------------------------------


@magics_class
class PostHogMagics(Magics, Configurable):
    """`%posthog RESOURCE [flags]`, `%posthog SUBCOMMAND`, and `%%posthog [VAR]` for HogQL."""

    limit = Int(
        None,
        allow_none=True,
        help="Default --limit: only the first N rows of each resource, and no more pages "
        "requested than they need. None fetches every row.",
    ).tag(config=True)
    progress = Bool(True, help="Show progress bars while pages download.").tag(config=True)
    display_rows = Int(
        None,
        allow_none=True,
        help="Rows pandas shows when a result is displayed (sets pandas' display.max_rows "
        "and display.min_rows). None leaves pandas' settings alone.",
    ).tag(config=True)
    auto_connect = Bool(
        True,
        help="Connect on first use with posthog_pandas.connect() (argument, environment, .env, "
        "then the login form). When False, run %posthog connect or %posthog login first.",
    ).tag(config=True)
    cache = Bool(True, help="Use the on-disk cache; False is --no-cache on every call.").tag(
        config=True
    )

    def __init__(self, shell: Any) -> None:
        super().__init__(shell=shell, parent=shell)
        self.observe(self._apply_display_rows, names=["display_rows"])
        self._subcommands: dict[str, Callable[[list[str]], Any]] = {
            "cache": self._cmd_cache,
            "connect": self._cmd_connect,
            "help": self._cmd_help,
            "login": self._cmd_login,
            "use": self._cmd_use,
            "whoami": self._cmd_whoami,
            **{kind: partial(self._cmd_insight, kind) for kind in _insight_magics.INSIGHTS},
        }

    # -- entry points --

    # no_var_expand: event names start with $ ($pageview), which IPython would expand.
    @no_var_expand
    @line_magic("posthog")  # type: ignore[arg-type]
    def posthog_line(self, line: str) -> Any:
        """%posthog RESOURCE [--after D] [--before D] [--event E] [--limit N] [-o VAR] ...

        Subcommands: login, connect, whoami, cache info|clear, help. `%posthog help` lists all.
        """
        args = _split(line)
        if not args or args[0] in ("-h", "--help"):
            return self._cmd_help([])
        name, rest = args[0], args[1:]
        with notebook_errors():
            if name in self._subcommands:
                return self._subcommands[name](rest)
            if name == "query":
                sql = line.strip()[len("query") :].strip()
                options = {"refresh": False, "cache": self.cache}
                return self._run_query(sql, None, options, None, None)
            entry = resource_named(name)
            if entry is not None:
                return self._fetch(entry, rest)
        choices = [*SUBCOMMANDS, *NAMES]
        raise UsageError(f"%posthog: {unknown_message(name, choices)}")

    @no_var_expand
    @cell_magic("posthog")  # type: ignore[arg-type]
    def posthog_cell(self, line: str, cell: str) -> Any:
        """%%posthog [VAR] [--csv PATH] [--parquet PATH] [--refresh] [--no-cache]

        The cell is HogQL; `{name}` placeholders are bound from your variables by PostHog
        (never pasted into the SQL text).
        """
        opts = cell_parser().parse_line(_split(line))
        if opts.var is not None and not opts.var.isidentifier():
            raise UsageError(f"%%posthog: {opts.var!r} is not a valid variable name.")
        with notebook_errors():
            return self._run_query(cell, opts.var, self._call_options(opts), opts.csv, opts.parquet)

    # -- resources and queries --

    def _fetch(self, entry: Resource, args: list[str]) -> Any:
        opts = resource_parser().parse_line(args)
        if opts.out is not None and not opts.out.isidentifier():
            raise UsageError(f"%posthog: -o {opts.out!r} is not a valid variable name.")
        kwargs = self._resource_kwargs(entry, opts)
        result = self._read(entry, kwargs)
        limit = opts.limit if opts.limit is not None else self.limit
        # Lists and events stop paging at the limit; one answer (an insight) is cut here.
        if isinstance(result, pd.DataFrame) and not entry.takes_limit and limit is not None:
            result = result.head(limit).reset_index(drop=True)
        return self._deliver(result, opts.out, opts.csv, opts.parquet)

    def _read(self, entry: Resource, kwargs: Mapping[str, Any]) -> Any:
        """The accessor's answer; for events, a line on the window read when it was the
        default one or held nothing (said here with the magic's flags, not as a warning)."""
        ph = self.connection()
        if entry.kind != "events":
            return ph.read(entry.name, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmptyWindowWarning)
            result = ph.read(entry.name, **kwargs)
        note = window_note(result, "--after/--before") if isinstance(result, pd.DataFrame) else None
        if note is not None:
            print(note)
        return result

    def _resource_kwargs(self, entry: Resource, opts: argparse.Namespace) -> dict[str, Any]:
        """The accessor's arguments from the flags the registry gives this resource."""
        name, flags = entry.name, entry.magic_flags
        if not entry.call_options:
            _reject_flags(name, opts, ())
            return {}
        _reject_flags(name, opts, (*flags, "limit"))
        kwargs = self._call_options(opts)
        for flag, argument in flags.items():
            if flag == "event":
                if opts.event:
                    kwargs[argument] = opts.event[0] if len(opts.event) == 1 else opts.event
            else:
                kwargs[argument] = getattr(opts, flag)
        limit = opts.limit if opts.limit is not None else self.limit
        if limit is not None and entry.takes_limit:
            kwargs["limit"] = limit
        if entry.id_argument is not None:
            kwargs[entry.id_argument] = _id_argument(entry, opts.id)
        elif opts.id is not None:
            raise UsageError(f"%posthog {name}: {unknown_message(opts.id, [])}")
        return kwargs

    def _call_options(self, opts: argparse.Namespace) -> dict[str, Any]:
        return {
            "refresh": bool(opts.refresh),
            "cache": self.cache and not opts.no_cache,
            "progress": self.progress,
        }

    def _run_query(
        self,
        sql: str,
        var: str | None,
        options: Mapping[str, Any],
        csv: str | None,
        parquet: str | None,
    ) -> Any:
        if not sql.strip():
            raise UsageError("%%posthog: the cell is empty; write a HogQL SELECT statement.")
        values = self._bind(sql)
        ph = self.connection()
        df = ph.query(
            sql, values or None, cache=bool(options.get("cache")), refresh=options["refresh"]
        )
        return self._deliver(df, var, csv, parquet)

    def _bind(self, sql: str) -> dict[str, Any]:
        """Values for the `{name}` placeholders, from the user's namespace (never formatted in)."""
        names = dict.fromkeys(_PLACEHOLDER.findall(sql))
        namespace = self._user_ns()
        missing = [n for n in names if n not in namespace]
        if missing:
            raise UsageError(
                f"%%posthog: placeholder {{{missing[0]}}} has no value: define a variable named "
                f"{missing[0]!r} first (placeholders are bound from your variables by PostHog)."
            )
        return {name: bindable(namespace[name]) for name in names}

    def _deliver(self, result: Any, var: str | None, csv: str | None, parquet: str | None) -> Any:
        if csv is not None or parquet is not None:
            if not isinstance(result, pd.DataFrame):
                raise UsageError("--csv/--parquet need a table result.")
            if csv is not None:
                write_frame(result, csv, format="csv")
            if parquet is not None:
                write_frame(result, parquet, format="parquet")
        if var is not None:
            self._user_ns()[var] = result
        return result

    def _user_ns(self) -> dict[str, Any]:
        assert self.shell is not None
        ns: dict[str, Any] = self.shell.user_ns
        return ns

    # -- the connection --

    def connection(self) -> PostHog:
        """The default connection; connect() on first use when auto_connect is on."""
        ph = get_connection()
        if ph is not None:
            return ph
        if not self.auto_connect:
            raise UsageError(
                "Not connected: run %posthog connect (or %posthog login), or set "
                "%config PostHogMagics.auto_connect = True."
            )
        with notebook_errors():
            ph = auto_connect(progress=self.progress)
        set_connection(ph)
        return ph

    # -- subcommands --

    def _cmd_connect(self, args: list[str]) -> PostHog:
        opts = connect_parser().parse_line(args)
        ph = connect(host=opts.host, project_id=opts.project_id, progress=self.progress)
        set_connection(ph)
        return ph

    def _cmd_login(self, args: list[str]) -> Any:
        opts = connect_parser().parse_line(args)
        ph = get_connection() or unconnected_client(opts.host, opts.project_id)
        ph.progress = self.progress
        set_connection(ph)
        if _credentials._in_notebook():
            from posthog_pandas.widgets import show_login

            show_login(ph, host=opts.host, project_id=opts.project_id)
            return None
        key = getpass.getpass(f"PostHog personal API key for {opts.host or ph.settings.host}: ")
        ph.login(key, host=opts.host, project_id=opts.project_id)
        print(connected_message(ph))
        return None

    def _cmd_use(self, args: list[str]) -> None:
        parser = MagicArgumentParser("%posthog use")
        parser.add_argument("var", metavar="VAR", help="a variable holding a PostHog connection")
        name = parser.parse_line(args).var
        value = self._user_ns().get(name)
        if not isinstance(value, PostHog):
            found = "not defined" if value is None else f"a {type(value).__name__}"
            raise UsageError(
                f"%posthog use: {name!r} is {found}, not a connection from "
                "posthog_pandas.connect()."
            )
        set_connection(value)
        print(f"%posthog now uses {name} ({value.settings.host}).")

    def _cmd_whoami(self, args: list[str]) -> None:
        MagicArgumentParser("%posthog whoami").parse_line(args)
        ph = self.connection()
        me = readable_user(ph)
        for label, value in whoami(ph, me).items():
            print(f"{label + ':':<9}{value}")

    def _cmd_cache(self, args: list[str]) -> Any:
        opts = cache_parser().parse_line(args)
        ph = get_connection()
        store = ph.cache if ph is not None else CacheStore(default_cache_dir())
        if opts.action == "clear":
            removed = store.clear(resource=opts.resource)
            scope = f" of {opts.resource}" if opts.resource else ""
            print(f"Removed {removed} cache entries{scope} from {store.directory}.")
            return None
        info = store.info()
        if opts.resource is None:
            return info
        frame = info.to_frame()
        return frame[frame["resource"] == opts.resource].reset_index(drop=True)

    def _cmd_insight(self, kind: str, args: list[str]) -> Any:
        """%posthog trends|funnel|retention ... (see _insight_magics)."""
        parser = MagicArgumentParser(f"%posthog {kind}")
        _add_output_flags(parser)
        _insight_magics.add_arguments(kind, parser)
        opts = parser.parse_line(args)
        if opts.out is not None and not opts.out.isidentifier():
            raise UsageError(f"%posthog: -o {opts.out!r} is not a valid variable name.")
        frame = _insight_magics.run(self.connection(), kind, opts, self._call_options(opts))
        return self._deliver(frame, opts.out, opts.csv, opts.parquet)

    def _cmd_help(self, args: list[str]) -> None:
        print(help_text(self))

    def _apply_display_rows(self, change: Mapping[str, Any]) -> None:
        rows = change["new"]
        if rows is not None:
            pd.set_option("display.max_rows", rows)
            pd.set_option("display.min_rows", rows)


# -- helpers ---------------------------------------------------------------------------------------


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%posthog: cannot parse the line ({exc}).") from None


def _reject_flags(name: str, opts: argparse.Namespace, allowed: Sequence[str]) -> None:
    for flag in ("after", "before", "event", "limit"):
        if flag not in allowed and getattr(opts, flag) is not None:
            raise UsageError(f"%posthog {name}: --{flag} does not apply to {name}.")


def _id_argument(entry: Resource, raw: str | None) -> int:
    name, what = entry.name, entry.id_argument
    if raw is None:
        raise UsageError(f"%posthog {name} needs {what}, e.g. %posthog {name} 1")
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"%posthog {name}: {what} must be an integer, got {raw!r}.") from None


def bindable(value: Any) -> Any:
    """A namespace value in a form PostHog can bind (JSON types; datetimes as UTC text for
    `toDateTime64({x}, 6, 'UTC')`: compared bare with a DateTime, PostHog would read that text
    as a wall time in the project's timezone)."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return hogql_literal(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (tuple, set, frozenset, pd.Series, pd.Index)):
        return [bindable(v) for v in value]
    if isinstance(value, list):
        return [bindable(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def auto_connect(*, progress: bool | None = None) -> PostHog:
    """connect() through the usual chain (a login remembered by the form comes after .env)."""
    return connect(progress=progress)


def unconnected_client(host: str | None = None, project_id: str | None = None) -> PostHog:
    """A PostHog with settings from the usual chain but no key yet (for the login form)."""
    return connect(host=host, project_id=project_id, prompt=False, login=False)


def help_text(magics: PostHogMagics) -> str:
    listed = [r for r in RESOURCES if r.kind != "query"]
    usage = {r.name: r.name + (" ID" if r.id_argument else "") for r in listed}
    width = max(map(len, usage.values()))
    resources = "\n".join(
        f"      {usage[r.name]:<{width}}  {r.doc}"
        + (f" (ID: {r.id_argument})" if r.id_argument else "")
        + "".join(f" --{flag}" for flag in r.magic_flags)
        for r in listed
    )
    traits = "\n".join(
        f"  %config PostHogMagics.{name} = ...   {first_sentence(trait.help)} "
        f"(now {getattr(magics, name)!r})"
        for name, trait in sorted(magics.class_traits(config=True).items())
    )
    return f"""\
%posthog RESOURCE [ID] [--after D] [--before D] [--event E] [--limit N] [-o VAR]
                  [--csv PATH] [--parquet PATH] [--refresh] [--no-cache]
    Fetch a resource as a DataFrame: df = %posthog persons. --limit N asks PostHog for
    the first N rows only. Resources, with the flags each takes besides --limit:
{resources}
{_insight_magics.USAGE}
%posthog query SELECT ...        run one line of HogQL
%%posthog [VAR] [--csv PATH] [--parquet PATH] [--refresh] [--no-cache]
    The cell is HogQL; {{name}} placeholders are bound from your variables.
%posthog login [--host H] [--project-id N]     show the login form
%posthog connect [--host H] [--project-id N]   connect with key from the environment/.env
%posthog use VAR                 use the connection in variable VAR (ph = connect(...))
%posthog whoami                  user, project, host and auth mode
%posthog cache info|clear [--resource R]
%posthog help                    this text
Settings:
{traits}"""


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def first_sentence(text: str) -> str:
    """Text up to its first full stop followed by a space ("display.max_rows" is one word),
    whitespace collapsed."""
    return _SENTENCE_END.split(" ".join(text.split()), maxsplit=1)[0]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext posthog_pandas`: register the magics and make them `%config`-urable."""
    magics = PostHogMagics(ipython)
    ipython.register_magics(magics)
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)

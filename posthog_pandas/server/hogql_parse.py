"""PostHog's own HogQL parser, so the local server accepts and rejects queries exactly as PostHog.

The `hogql-parser` wheel is PostHog's C++/ANTLR parser (`common/hogql_parser` in PostHog's
repository). PostHog's API runs `parse_select_json(query)` and turns an error object into an
`ExposedHogQLError` (`posthog/hogql/json_ast.py`), which `posthog/api/query.py` answers as a
400 `validation_error` whose detail is the parser's message. `parse_error(query)` gives that
message, or None when PostHog would go on to run the query.

Loading the wheel: its module init imports `posthog.hogql.errors` (for the exception classes it
raises) with CPython's `PyImport_ImportModule`, which imports the top-level `posthog` too. That
name belongs to PostHog's Python SDK (`pip install posthog`). So the loader puts a stand-in
errors module into `sys.modules` for the moment of the import only (the extension keeps its own
reference to it); an installed SDK is imported as `import posthog` would, and an empty stand-in
`posthog` is used, and removed again, only where no `posthog` package exists at all.

Parsing is costly next to everything else the server does with a query (sqlglot's parse
included), so answers are cached by query text: every keyset page after the first sends the
same text with new values, and a cached answer is a dictionary lookup.
There is no wheel for Windows; there the check is skipped and sqlglot alone parses.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

import orjson

__all__ = [
    "PARSER_AVAILABLE_PLATFORMS",
    "HogQLParserError",
    "parse_error",
    "parse_tree",
    "parser_loaded",
]

_ERRORS_MODULE = "posthog.hogql.errors"
# The platforms PyPI has `hogql-parser` wheels for (Linux and macOS, no Windows).
PARSER_AVAILABLE_PLATFORMS = ("linux", "darwin")
_CACHE_SIZE = 1024

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_parse_select_json: Callable[[str], str] | None = None
_loaded = False


class HogQLParserError(Exception):
    """PostHog's `BaseHogQLError`: a message, with the [start, end) offsets it concerns."""

    def __init__(self, message: str, *, start: int | None = None, end: int | None = None):
        super().__init__(message)
        self.start = start
        self.end = end


class _Exposed(HogQLParserError):
    """PostHog's `ExposedHogQLError`: shown to the user as a 400."""


class _Internal(HogQLParserError):
    """PostHog's `InternalHogQLError`: a fault in the engine, a 500 in PostHog."""


class ParserSyntaxError(_Exposed):
    """PostHog's `SyntaxError`: the text is not HogQL (e.g. "Unmatched curly bracket")."""


def _errors_module() -> types.ModuleType:
    """The classes the extension looks up by name in `posthog.hogql.errors`."""
    module = types.ModuleType(_ERRORS_MODULE, "Stand-in for posthog.hogql.errors (hogql-parser).")
    classes: dict[str, type[HogQLParserError]] = {
        "BaseHogQLError": HogQLParserError,
        "ExposedHogQLError": _Exposed,
        "InternalHogQLError": _Internal,
        "SyntaxError": ParserSyntaxError,
        "QueryError": type("QueryError", (_Exposed,), {}),
        "NotImplementedError": type("NotImplementedError", (_Internal,), {}),
        "ParsingError": type("ParsingError", (_Internal,), {}),
        "ImpossibleASTError": type("ImpossibleASTError", (_Internal,), {}),
        "ResolutionError": type("ResolutionError", (_Internal,), {}),
    }
    for name, cls in classes.items():
        setattr(module, name, cls)
    return module


def _import_parser() -> Any:
    """Import `hogql_parser` with `posthog.hogql.errors` importable, then restore sys.modules.

    The extension's `PyImport_ImportModule("posthog.hogql.errors")` calls `__import__` with an
    empty fromlist, which returns the top-level package: an entry for the full name alone is
    not enough, `posthog` itself must import. A `posthog` that exists (PostHog's SDK) is the
    one imported; a stand-in is used only where no `posthog` can be found.
    """
    if _ERRORS_MODULE in sys.modules:  # running inside PostHog itself: use its classes
        return importlib.import_module("hogql_parser")
    added = [_ERRORS_MODULE]
    sys.modules[_ERRORS_MODULE] = _errors_module()
    try:
        if "posthog" not in sys.modules:
            if importlib.util.find_spec("posthog") is not None:
                importlib.import_module("posthog")
            else:
                sys.modules["posthog"] = types.ModuleType("posthog")
                added.append("posthog")
        return importlib.import_module("hogql_parser")
    finally:
        for name in added:
            sys.modules.pop(name, None)


def _parser() -> Callable[[str], str] | None:
    """PostHog's `parse_select_json`, loaded once; None where the wheel is not installed."""
    global _parse_select_json, _loaded
    with _lock:
        if not _loaded:
            try:
                module = _import_parser()
            except ModuleNotFoundError as exc:
                if exc.name != "hogql_parser":
                    raise
                _log.warning(
                    "hogql-parser is not installed (it has no Windows wheel): the local server "
                    "parses HogQL with sqlglot only and may accept queries PostHog rejects."
                )
                module = None
            _parse_select_json = None if module is None else module.parse_select_json
            _loaded = True
        return _parse_select_json


def parser_loaded() -> bool:
    """Whether PostHog's parser is available here (it is wherever its wheel installs)."""
    return _parser() is not None


def parse_tree(query: str) -> dict[str, Any] | None:
    """PostHog's JSON AST of `query`, or its error object (`{"error": true, "message": ...}`);
    None where the parser is not installed. `{name}` placeholders are `Placeholder` nodes."""
    parse = _parser()
    if parse is None:
        return None
    tree: dict[str, Any] = orjson.loads(parse(query))  # negligible next to the parse itself
    return tree


@functools.lru_cache(maxsize=_CACHE_SIZE)
def parse_error(query: str) -> str | None:
    """PostHog's message for a query its parser rejects, or None when it accepts the query.

    Placeholders (`{name}`) are part of the grammar and stay placeholders, as in PostHog, which
    parses the text first and binds `values` afterwards. Internal parser faults (PostHog's 500s)
    propagate as `HogQLParserError`.
    """
    try:
        tree = parse_tree(query)
    except ParserSyntaxError as exc:  # raised, not returned, e.g. "Unmatched curly bracket"
        return str(exc)
    if tree is None or tree.get("error") is not True:
        return None
    return str(tree.get("message") or "Unknown error")  # json_ast.py's fallback text

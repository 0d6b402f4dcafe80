"""PostHog `properties` filters (JSON list or AND/OR group) compiled to DuckDB SQL."""

from __future__ import annotations

from typing import Any

import orjson

from posthog_pandas.server.web import ApiError

__all__ = ["compile_properties"]


def _path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _one(flt: dict[str, Any], columns: dict[str, str], params: list[Any]) -> str:
    key = flt.get("key")
    if not isinstance(key, str):
        raise ApiError.validation("Property filter needs a 'key'.", attr="properties")
    kind = flt.get("type") or "event"
    column = columns.get(kind)
    if column is None:
        raise ApiError.validation(f"Unsupported property type '{kind}'.", attr="properties")
    op = flt.get("operator") or "exact"
    value = flt.get("value")
    expr = f"json_extract_string({column}, ?)"
    params.append(_path(key))
    if op in ("is_set", "is_not_set"):
        return f"({expr} IS {'NOT ' if op == 'is_set' else ''}NULL)"
    if op in ("exact", "is_not"):
        values = value if isinstance(value, list) else [value]
        params.extend(_text(v) for v in values)
        marks = ", ".join("?" for _ in values)
        if op == "exact":
            return f"({expr} IN ({marks}))"
        params.append(_path(key))
        return f"({expr} NOT IN ({marks}) OR json_extract_string({column}, ?) IS NULL)"
    if op in ("icontains", "not_icontains"):
        params.append(f"%{_text(value)}%")
        neg = "NOT " if op == "not_icontains" else ""
        return f"(coalesce({neg}({expr} ILIKE ?), {'true' if neg else 'false'}))"
    if op in ("regex", "not_regex"):
        params.append(_text(value))
        neg = "NOT " if op == "not_regex" else ""
        return f"(coalesce({neg}regexp_matches({expr}, ?), {'true' if neg else 'false'}))"
    if op in ("gt", "gte", "lt", "lte"):
        sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        try:
            params.append(float(value))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ApiError.validation(f"'{value}' is not a number.", attr="properties") from None
        return f"(TRY_CAST({expr} AS DOUBLE) {sym} ?)"
    raise ApiError.validation(f"Unsupported operator '{op}'.", attr="properties")


def _group(node: Any, columns: dict[str, str], params: list[Any]) -> str:
    if isinstance(node, list):
        parts = [_group(n, columns, params) for n in node]
        return "(" + " AND ".join(parts) + ")" if parts else "true"
    if isinstance(node, dict) and "values" in node and "key" not in node:
        joiner = " OR " if str(node.get("type", "AND")).upper() == "OR" else " AND "
        parts = [_group(n, columns, params) for n in node["values"]]
        return "(" + joiner.join(parts) + ")" if parts else "true"
    if isinstance(node, dict):
        return _one(node, columns, params)
    raise ApiError.validation("Properties are unparsable!", attr="properties")


def compile_properties(raw: str | None, columns: dict[str, str]) -> tuple[str, list[Any]]:
    """SQL condition + parameters; `columns` maps filter type (event, person) to a JSON column."""
    if not raw:
        return "true", []
    try:
        node = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError.validation("Properties are unparsable!", attr="properties") from None
    params: list[Any] = []
    return _group(node, columns, params), params

"""Exact JSON decoding: the long-number scan, and query answers whose types vouch for orjson."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from posthog_pandas import _json
from posthog_pandas.query import parsed_exactly

BIG = 2**64 + 1  # orjson alone reads it back as 1.8446744073709552e19


def answer(types: list[Any], value: Any) -> bytes:
    columns = [f"c{i}" for i in range(len(types))]
    return orjson.dumps({"columns": columns, "types": types, "results": [[value] * len(types)]})


def count_scans(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    scanned: list[bytes] = []
    real = _json.has_long_number

    def counting(data: bytes) -> bool:
        scanned.append(data)
        return real(data)

    monkeypatch.setattr(_json, "has_long_number", counting)
    return scanned


def test_a_big_integer_is_exact_without_a_voucher() -> None:
    assert _json.loads(b'{"n": 18446744073709551617}') == {"n": BIG}
    assert _json.loads(b'{"n": 18446744073709551615}') == {"n": 2**64 - 1}


def test_a_vouched_answer_skips_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    scanned = count_scans(monkeypatch)
    body = answer(["String", "UInt64"], 2**64 - 1)
    data = _json.loads(body, exact_if=parsed_exactly)
    assert data["results"] == [[2**64 - 1, 2**64 - 1]]
    assert scanned == []


def test_an_answer_the_voucher_refuses_is_scanned_and_stays_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scanned = count_scans(monkeypatch)
    body = b'{"columns": ["n"], "types": ["UInt256"], "results": [[18446744073709551617]]}'
    assert _json.loads(body, exact_if=parsed_exactly)["results"] == [[BIG]]
    assert scanned == [body]


def test_invalid_json_with_a_voucher_raises_the_usual_error() -> None:
    with pytest.raises(ValueError):
        _json.loads(b'{"results": [', exact_if=parsed_exactly)


@pytest.mark.parametrize(
    "types",
    [
        ["String", "DateTime64(6, 'UTC')", "Int64", "UInt64", "Float64"],
        ["Nullable(UInt64)", "LowCardinality(String)", "Array(Int64)", "Map(String, UInt32)"],
        [["uuid", "UUID"], ["n", "Int64"]],  # some PostHog versions send [name, type] pairs
        [],  # no columns at all
    ],
)
def test_answers_whose_types_hold_only_64_bit_integers_parse_exactly(types: list[Any]) -> None:
    data = {"columns": [f"c{i}" for i in range(len(types))], "types": types, "results": []}
    assert parsed_exactly(data) is True


@pytest.mark.parametrize(
    "data",
    [
        {"columns": ["n"], "types": ["Int128"], "results": []},
        {"columns": ["n"], "types": ["UInt256"], "results": []},
        {"columns": ["n"], "types": ["Nullable(Decimal(38, 2))"], "results": []},
        {"columns": ["n"], "types": ["Array(UInt128)"], "results": []},
        {"columns": ["j"], "types": ["JSON"], "results": []},
        {"columns": ["j"], "types": ["Dynamic"], "results": []},
        {"columns": ["n"], "results": []},  # no types: nothing vouches
        {"columns": ["n", "m"], "types": ["Int64"], "results": []},  # a column without a type
        {"columns": ["n"], "types": [None], "results": []},
        {"columns": ["n"], "types": [""], "results": []},
        {"columns": ["n"], "types": ["Int64"]},  # not an answer with rows
        {"results": [], "query_status": {"id": "q1", "complete": False}},
        [1, 2, 3],
    ],
)
def test_answers_that_may_hold_wider_numbers_are_not_vouched_for(data: Any) -> None:
    assert parsed_exactly(data) is False


@pytest.mark.parametrize("where", [0, 255, 256, 257, 999])
def test_needs_exact_finds_a_big_integer_in_any_text_of_a_page(where: int) -> None:
    texts = ['{"n": 1234567}'] * 1000
    assert _json.needs_exact(texts) is False
    texts[where] = '{"n": 18446744073709551617}'
    assert _json.needs_exact(texts) is True
    assert _json.needs_exact(tuple(texts)) is True  # the frame builder passes tuples too


def test_digit_runs_of_neighbouring_texts_do_not_add_up() -> None:
    # 1,000 texts of 12 digits each: joined without a separator they would read as one run
    assert _json.needs_exact(["123456789012"] * 1000) is False

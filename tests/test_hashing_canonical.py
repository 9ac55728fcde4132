"""canonical_json: RFC 8785 JCS output, the RFC examples, and errors for what JSON cannot carry."""

import json
import math
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from hashing import CanonicalEncodingError, HashingError, canonical_json


def test_rfc8785_section_3_2_4_example() -> None:
    source = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],'
        '"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_json(json.loads(source)) == expected


def test_rfc8785_section_3_2_3_key_order_is_by_utf16_code_units() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = list(json.loads(canonical_json(value)))
    # U+1F600 is the surrogate pair D83D DE00, so it sorts before U+FB33.
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


# RFC 8785 appendix B: IEEE 754 bit patterns and their canonical text.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B, ids=[bits for bits, _ in APPENDIX_B])
def test_rfc8785_appendix_b_numbers(bits: str, text: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_json(number) == text.encode()


def test_integers_in_the_safe_range_are_plain_decimals() -> None:
    assert (
        canonical_json([0, -1, 2**53 - 1, -(2**53) + 1])
        == b"[0,-1,9007199254740991,-9007199254740991]"
    )


def test_unicode_is_utf8_and_only_required_escapes_are_used() -> None:
    value = {"name": "Zoë 🌍 \u2028", "quote": '"\\', "control": "\x00\x1f\t"}
    encoded = canonical_json(value)
    assert encoded == (
        '{"control":"\\u0000\\u001f\\t","name":"Zoë 🌍 \u2028","quote":"\\"\\\\"}'.encode()
    )
    assert json.loads(encoded) == value


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(json_values, st.randoms(use_true_random=False))
def test_key_order_and_whitespace_do_not_change_the_encoding(value: Any, rng: Any) -> None:
    def shuffled(item: Any) -> Any:
        if isinstance(item, dict):
            keys = list(item)
            rng.shuffle(keys)
            return {key: shuffled(item[key]) for key in keys}
        if isinstance(item, list):
            return [shuffled(child) for child in item]
        return item

    reformatted = json.loads(json.dumps(shuffled(value), indent=3, ensure_ascii=rng.random() < 0.5))
    encoded = canonical_json(value)
    assert canonical_json(reformatted) == encoded
    # Numbers round-trip as IEEE doubles; JCS may print a large one as an integer.
    assert json.loads(encoded, parse_int=float) == json.loads(json.dumps(value), parse_int=float)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (math.nan, "nan"),
        (math.inf, "inf"),
        ({"nested": [-math.inf]}, "inf"),
        ({1: "one"}, "keys must be strings"),
        ({("a",): 1}, "keys must be strings"),
        (2**53, "exceeds safe integer"),
        (b"raw bytes", "unsupported type"),
        ({"when": object()}, "unsupported type"),
        ({1, 2}, "unsupported type"),
        ("\ud800", "non-UTF-8"),
        ({"\udfff": 1}, "not valid Unicode"),
    ],
    ids=[
        "nan",
        "infinity",
        "nested-negative-infinity",
        "int-key",
        "tuple-key",
        "int-too-large",
        "bytes",
        "object",
        "set",
        "lone-surrogate",
        "surrogate-key",
    ],
)
def test_values_json_cannot_carry_raise_canonical_encoding_error(
    value: object, reason: str
) -> None:
    with pytest.raises(CanonicalEncodingError, match=reason) as caught:
        canonical_json(value)
    assert isinstance(caught.value, HashingError)
    assert isinstance(caught.value, ValueError)


def test_cyclic_value_raises_canonical_encoding_error() -> None:
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(CanonicalEncodingError, match="cyclic"):
        canonical_json(cyclic)


# The fast path (orjson on plain values) must write exactly what rfc8785 writes.
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) - 5, max_value=2**53 + 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(_json_values)
def test_fast_path_agrees_with_rfc8785(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)  # type: ignore[arg-type]
    except (rfc8785.CanonicalizationError, UnicodeError):
        with pytest.raises(CanonicalEncodingError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize("code_point", [*range(0, 0x80), 0x7F, 0x2028, 0x2029, 0xFEFF, 0x1F600])
def test_fast_path_escapes_like_rfc8785(code_point: int) -> None:
    value = {"k": f"a{chr(code_point)}b", "list": [chr(code_point)]}
    assert canonical_json(value) == rfc8785.dumps(value)

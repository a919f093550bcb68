"""Decoders and the schema: exact values, and one clear SchemaError per kind of bad record."""

import msgpack
import numpy as np
import orjson
import pytest

from stream_logreg.decode import SchemaError, make_decoder
from stream_logreg.features import Features
from stream_logreg.sources import iter_records


def test_csv_lines_with_quotes_and_a_header():
    decode = make_decoder("csv", header=["id", "a", "color", "label"])
    schema = Features("label", drop=["id"], categorical=["color"])
    assert schema.decode(decode(b'7,"1.5",red,1\r\n')) == ({"a": 1.5, "color=red": 1.0}, True)
    with pytest.raises(SchemaError, match="field 'a' has the non-numeric value '1,5'"):
        schema.decode(decode(b'7,"1,5",red,1'))
    assert schema.decode(decode(b'7,"-2.5","dark, red",0')) == ({"a": -2.5, "color=dark, red": 1.0}, False)
    with pytest.raises(SchemaError, match="the CSV line has 3 fields, the header has 4"):
        decode(b"1,2,3")
    with pytest.raises(ValueError, match="the csv decoder needs header"):
        make_decoder("csv")


def test_msgpack_maps():
    decode = make_decoder("msgpack")
    raw = msgpack.packb({"a": 0.1, "b": 3, "label": True})
    assert Features("label").decode(decode(raw)) == ({"a": 0.1, "b": 3.0}, True)
    with pytest.raises(SchemaError, match="invalid MessagePack"):
        decode(b"\xc1")
    with pytest.raises(SchemaError, match="not a map"):
        decode(msgpack.packb([1, 2]))


def test_unknown_decoder():
    with pytest.raises(ValueError, match="unknown decoder 'xml'"):
        make_decoder("xml")


@pytest.mark.parametrize(
    ("label", "expected"),
    [(True, True), (0, False), ("1", True), ("false", False), ("TRUE", True), (1.0, True), ("0.0", False)],
)
def test_binary_labels(label, expected):
    assert Features("y").decode({"a": 1, "y": label})[1] is expected


@pytest.mark.parametrize("label", [7, -1, "yes", None, 0.5, "", [1]])
def test_non_binary_labels(label):
    with pytest.raises(SchemaError, match="is not binary"):
        Features("y").decode({"a": 1, "y": label})


def test_chosen_and_dropped_fields():
    record = {"a": 1, "b": 2, "c": "x", "y": 0}
    assert Features("y", features=["b"]).decode(record) == ({"b": 2.0}, False)
    assert Features("y", drop=["c"]).decode(record) == ({"a": 1.0, "b": 2.0}, False)
    assert Features("y", features=["z", "a"]).decode(record) == ({"a": 1.0}, False)  # a missing field: absent


def test_iter_records_names_the_bad_record():
    records: list[dict] = [{"a": 1, "y": 1}, {"a": "inf", "y": 0}]
    stream = iter_records(records, target="y")
    assert next(stream) == ({"a": 1.0}, True)
    with pytest.raises(SchemaError, match="record 1: field 'a' has the value 'inf', which is not finite"):
        next(stream)


# -- the C fast path for JSON batches ------------------------------------------------------

NUMBER_TOKENS = [
    "0", "-0", "1", "-1", "0.0", "-0.0", "1.0", "1e0", "10e-1", "0.5", "2", "17", "-3.25", "1E+2", "1e-2",
    "123456789012345678", "-123456789012345678", "1234567890123456789", "99999999999999999999999",
    "9007199254740993", "0.1", "2.2250738585072011e-308", "4.9e-324", "1e-320", "1e-400", "1.7976931348623157e308",
    "1.8e308", "1e309", "-1e999", "01", "+1", ".5", "5.", "1e", "1.e3", "-", "NaN", "Infinity", "-Infinity",
    '"1.5"', '"abc"', '""', "true", "false", "null", "[1]", '{"x": 1}', "0x10", "1_000",
]  # fmt: skip
KEYS = ["a", "b c", "x_1", "caf\u00e9", "a\\u0062", 'q\\"', "", "label"]


def slow_decode(value: bytes, target: str = "label"):
    """What the consumer's slow path gives: (x, y), or the SchemaError's message."""
    try:
        return Features(target).decode(make_decoder("json")(value))
    except SchemaError as e:
        return str(e)


def fast_decode(values: list, target: str = "label"):
    from stream_logreg.decode import JsonRows

    batch = JsonRows(Features(target)).decode(values)
    return [
        (dict(zip(batch.features, batch.values[i].tolist(), strict=True)), bool(batch.labels[i])) if ok else None
        for i, ok in enumerate(batch.ok.tolist())
    ]


def bits(x: dict) -> list:
    return [(name, value.hex()) for name, value in x.items()]


def assert_fast_equals_slow(values: list) -> int:
    """Every record the fast path takes equals the slow path's (x, y), keys in order and
    every value to the bit; returns how many it took."""
    taken = 0
    for value, fast in zip(values, fast_decode(values), strict=True):
        if fast is None:
            continue
        slow = slow_decode(value)
        assert not isinstance(slow, str), (value, slow)
        assert bits(fast[0]) == bits(slow[0]) and fast[1] == slow[1], value
        taken += 1
    return taken


def test_json_fast_path_takes_plain_records_bit_for_bit():
    rng = np.random.default_rng(7)
    values = []
    for _ in range(3000):
        row = rng.normal(size=5) * 10.0 ** rng.integers(-300, 300, size=5)
        fields = [f'"f{j}": {v!r}' for j, v in enumerate(row.tolist())]
        fields.insert(int(rng.integers(0, 6)), f'"label": {int(rng.integers(0, 2))}')
        values.append(("{" + ", ".join(fields) + "}").encode())
    # Every record has its own label position, so each is decoded alone (its own layout).
    assert sum(assert_fast_equals_slow([v]) for v in values) == len(values)
    same_layout = [
        orjson.dumps({"a": float(v), "b": int(v * 1e6), "label": i % 2}) for i, v in enumerate(rng.normal(size=500))
    ]
    assert assert_fast_equals_slow(same_layout) == 500


def test_json_fast_path_leaves_every_other_form_to_the_slow_path():
    rng = np.random.default_rng(8)
    values = [b"", b"{}", b"[]", b"1", b"null", b'{"label": 1} x', b'{"label": 1,}', b'{"label" 1}', b"\xff\xfe",
              b'{"label": 1, "label": 0}', b'{"a": 1, "a": 2, "label": 1}', b'\xef\xbb\xbf{"label": 1}']  # fmt: skip
    for number in NUMBER_TOKENS:
        for label in NUMBER_TOKENS:
            values.append(f'{{"a": {number}, "label": {label}}}'.encode())
    for key in KEYS:
        values.append(f'{{"{key}": 1.5, "label": 1}}'.encode())
    for _ in range(500):  # whitespace of every kind around every token
        spaces = ["".join(rng.choice([" ", "\t", "\n", "\r"], size=int(rng.integers(0, 3)))) for _ in range(9)]
        a, b, c, d, e, f, g, h, i = spaces
        values.append(f'{a}{{{b}"a"{c}:{d}-1.25e-3{e},{f}"label"{g}:{h}1{i}}}{a}'.encode())
    taken = sum(assert_fast_equals_slow([v]) for v in values)
    # The plain forms among them were taken: the fast path is not a no-op.
    assert taken >= 500 + 10
    refused = [v for v in values if fast_decode([v]) == [None]]
    assert b'{"a": 1e309, "label": 1}' in refused and b'{"a": NaN, "label": 1}' in refused
    assert b'{"a": 1234567890123456789, "label": 1}' in refused and b'{"a": "1.5", "label": 1}' in refused
    assert b'{"a": 1, "label": 2}' in refused and b'{"a": 1, "label": 0.5}' in refused


def test_json_fast_path_in_a_batch_with_one_layout():
    values = [
        b'{"a": 1, "label": 1}',
        None,
        b'{"a": 2.5, "label": 0}',
        b'{"b": 1, "label": 1}',
        b'{"a": 3, "label": 1}',
    ]
    assert fast_decode(values) == [({"a": 1.0}, True), None, ({"a": 2.5}, False), None, ({"a": 3.0}, True)]
    from stream_logreg.decode import JsonRows

    rows = JsonRows(Features("label"))
    rows.decode([b'{"a": 1, "label": 1}'])
    # A batch whose first record is off the plain form keeps the last layout.
    assert rows.decode([b'{"a": "1", "label": 1}', b'{"a": 2, "label": 0}']).ok.tolist() == [False, True]
    assert JsonRows(Features("label")).decode([b'{"a": "1", "label": 1}']).ok.tolist() == [False]


def random_number_token(rng: np.random.Generator) -> str:
    """A JSON number of random shape: up to 22 integer and 22 fraction digits (leading
    zeros too), and an exponent across and beyond the range of doubles."""
    integer = "".join(rng.choice(list("0123456789"), size=int(rng.integers(1, 23)))).lstrip("0") or "0"
    token = ("-" if rng.random() < 0.5 else "") + integer
    if rng.random() < 0.7:
        token += "." + "".join(rng.choice(list("0123456789"), size=int(rng.integers(1, 23))))
    if rng.random() < 0.6:
        token += str(rng.choice(["e", "E", "e+", "e-", "E-"])) + str(int(rng.integers(0, 360)))
    return token


def test_json_fast_path_rounds_numbers_of_every_shape_as_orjson_does():
    rng = np.random.default_rng(9)
    names = [f"f{j}" for j in range(10)]
    values = []
    for _ in range(3000):
        fields = [f'"{name}": {random_number_token(rng)}' for name in names]
        values.append(("{" + ", ".join(fields) + ', "label": 0}').encode())
    # Shortest round-trip forms (what most producers write), across the whole range.
    doubles = np.frombuffer(rng.bytes(8 * 30000), dtype=np.float64)
    doubles = doubles[np.isfinite(doubles)].tolist()
    for start in range(0, len(doubles) - 10, 10):
        fields = [f'"{name}": {value!r}' for name, value in zip(names, doubles[start : start + 10], strict=True)]
        values.append(("{" + ", ".join(fields) + ', "label": 1}').encode())
    # Ties: integers exactly halfway between two doubles (rounded to even), and subnormals.
    for k in range(53, 60):
        spacing = 1 << (k - 52)
        ties = [(1 << k) + int(j) * spacing + spacing // 2 for j in rng.integers(0, 1 << 52, size=50)]
        values += [f'{{"a": {n}, "b": {n}e1, "c": {n}e-3, "label": 1}}'.encode() for n in ties]
    mantissas, exponents = rng.integers(1, 10**15, 200), rng.integers(308, 330, 200)
    tiny = [f"{int(n)}e-{int(e)}" for n, e in zip(mantissas, exponents, strict=True)]
    values += [f'{{"a": {t}, "label": 0}}'.encode() for t in tiny]
    taken = assert_fast_equals_slow(values)
    # All but the records holding an integer too long for orjson, or an out-of-range value.
    assert taken >= 0.6 * len(values)


def test_json_rows_refuses_keys_that_would_need_escapes():
    from stream_logreg import _jsonrows

    out, labels, ok = np.empty((1, 1)), np.empty(1), np.empty(1, dtype=np.uint8)
    for key in ['a"b', "a\\b", "a\nb"]:
        with pytest.raises(ValueError, match="without quotes or backslashes"):
            _jsonrows.rows([b"{}"], (key, "label"), "label", out, labels, ok)
    with pytest.raises(ValueError, match="the target must be one of the keys"):
        _jsonrows.rows([b"{}"], ("a", "b"), "label", out, labels, ok)

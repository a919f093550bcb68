"""Decoders and the schema: exact values, and one clear SchemaError per kind of bad record."""

import msgpack
import pytest

from stream_logreg.decode import Schema, SchemaError, make_decoder
from stream_logreg.sources import iter_records


def test_csv_lines_with_quotes_and_a_header():
    decode = make_decoder("csv", header=["id", "a", "color", "label"])
    schema = Schema("label", drop=["id"], categorical=["color"])
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
    assert Schema("label").decode(decode(raw)) == ({"a": 0.1, "b": 3.0}, True)
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
    assert Schema("y").decode({"a": 1, "y": label})[1] is expected


@pytest.mark.parametrize("label", [7, -1, "yes", None, 0.5, "", [1]])
def test_non_binary_labels(label):
    with pytest.raises(SchemaError, match="is not binary"):
        Schema("y").decode({"a": 1, "y": label})


def test_chosen_and_dropped_fields():
    record = {"a": 1, "b": 2, "c": "x", "y": 0}
    assert Schema("y", features=["b"]).decode(record) == ({"b": 2.0}, False)
    assert Schema("y", drop=["c"]).decode(record) == ({"a": 1.0, "b": 2.0}, False)
    with pytest.raises(SchemaError, match="the feature field 'z' is missing"):
        Schema("y", features=["z"]).decode(record)


def test_iter_records_names_the_bad_record():
    records: list[dict] = [{"a": 1, "y": 1}, {"a": "inf", "y": 0}]
    stream = iter_records(records, target="y")
    assert next(stream) == ({"a": 1.0}, True)
    with pytest.raises(SchemaError, match="record 1: field 'a' has the value 'inf', which is not finite"):
        next(stream)

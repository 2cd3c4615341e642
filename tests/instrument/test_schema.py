from __future__ import annotations

import uuid

import pytest

from tracekit.errors import SchemaError
from tracekit.schema import (
    is_trace_id,
    new_trace_id,
    normalize_trace_id,
    trace_id_from_uuid,
    trace_id_to_uuid,
    validate_event,
)

GOOD = {
    "timestamp": "2026-11-25T10:00:00.123456Z",
    "stage": "WS-RECV",
    "action": "receive",
    "event": "WS-RECV receive",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "actor": "u2",
    "source": "client-u2-7f3a",
    "seq": 7,
}


def test_a_valid_event_passes() -> None:
    validate_event(GOOD)
    validate_event({**GOOD, "timestamp": 1764064800.5})  # epoch numbers are accepted


@pytest.mark.parametrize("key", ["timestamp", "stage", "action", "event", "actor", "source", "seq"])
def test_missing_required_key_is_named(key: str) -> None:
    event = {k: v for k, v in GOOD.items() if k != key}
    with pytest.raises(SchemaError, match=f"missing required key '{key}'") as info:
        validate_event(event)
    assert info.value.key == key


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("seq", -1, "'seq' must be a non-negative integer"),
        ("seq", "7", "'seq' must be a non-negative integer"),
        ("seq", True, "'seq' must be a non-negative integer"),
        ("stage", "CHAT", "unknown stage 'CHAT'"),
        ("actor", "", "'actor' must be a non-empty string"),
        ("trace_id", "4BF92F3577B34DA6A3CE929D0E0E4736", "'trace_id' must be 32 lowercase hex"),
        ("trace_id", "abc", "'trace_id' must be 32 lowercase hex"),
        ("recipients", "u2", "'recipients' must be a list of strings"),
    ],
)
def test_malformed_key_is_named(key: str, value: object, message: str) -> None:
    with pytest.raises(SchemaError, match=message) as info:
        validate_event({**GOOD, key: value})
    assert info.value.key == key


def test_custom_stages_and_meta_stage() -> None:
    validate_event({**GOOD, "stage": "TRACEKIT"})
    validate_event({**GOOD, "stage": "PUSH"}, stages=frozenset({"PUSH"}))


def test_trace_id_uuid_round_trip() -> None:
    client_msg_id = "0b9e6f4c-1d2a-4e8b-9c3f-5a6b7c8d9e0f"
    trace_id = trace_id_from_uuid(client_msg_id)
    assert trace_id == "0b9e6f4c1d2a4e8b9c3f5a6b7c8d9e0f"
    assert trace_id_to_uuid(trace_id) == client_msg_id
    assert trace_id_from_uuid(uuid.UUID(client_msg_id)) == trace_id
    assert normalize_trace_id(client_msg_id.upper()) == trace_id
    assert normalize_trace_id(trace_id.upper()) == trace_id


@pytest.mark.parametrize(
    "bad", ["", "xyz", "0" * 32, "00000000-0000-0000-0000-000000000000", "g" * 32, 42, None]
)
def test_bad_trace_ids_are_rejected_clearly(bad: object) -> None:
    with pytest.raises(SchemaError, match=r"trace id|UUID") as info:
        normalize_trace_id(bad)
    assert info.value.key == "trace_id"


def test_new_trace_ids_are_valid_and_distinct() -> None:
    ids = {new_trace_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_trace_id(t) for t in ids)

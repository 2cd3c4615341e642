"""Legacy rules marked ``bare`` (failures, retries) look only at a line's own words."""

from __future__ import annotations

from tracekit.collectors import MemorySource, collect


def _legacy(lines: list[str]) -> MemorySource:
    return MemorySource(lines, name="client-u1.log", source_name="client-u1", format="legacy")


def test_failure_words_in_a_users_text_or_an_id_are_no_failure() -> None:
    got = collect(
        [
            _legacy(
                [
                    '2024-01-15T10:00:00Z [CTRL] sendMessage: "Sorry, I cannot make it" clientMsgId=tmp-1',
                    "2024-01-15T10:00:01Z [REST] Sending message: clientMsgId=tmp-1 conversationId=errors",
                    "2024-01-15T10:00:02Z [REST-SEND] Message sent: id=msg1 text='timeout again?'",
                    "2024-01-15T10:00:03Z [REST-SEND] Message send failed: HTTP 500 clientMsgId=tmp-2",
                    "2024-01-15T10:00:04Z [REST] Couldn't send: timed out clientMsgId=tmp-3",
                    "2024-01-15T10:00:05Z [REST-SEND] Retrying in 2s clientMsgId=tmp-3",
                ]
            )
        ]
    )
    rows = got.events.collect().select("line", "stage", "action").rows()
    assert rows == [
        (1, "CTRL", "send"),  # was CTRL.failed: "cannot" is in what the user wrote
        (2, "REST", "request"),  # was REST.failed: "errors" is a conversation's name
        (3, "REST", "response"),
        (4, "REST", "failed"),
        (5, "REST", "failed"),  # the apostrophe of "Couldn't" quotes nothing
        (6, "REST", "retry"),
    ]


def test_a_negated_error_is_no_failure() -> None:
    lines = [
        "2024-01-15T10:00:00Z [REST] Message sent without error: id=msg1",
        "2024-01-15T10:00:01Z [REST] Message sent, no errors id=msg2",
        "2024-01-15T10:00:02Z [REST] Message sent errors=0 id=msg3",
        "2024-01-15T10:00:03Z [REST] Message sent errors: 0 id=msg4",
        "2024-01-15T10:00:04Z [REST] Message sent, 0 errors id=msg5",
        "2024-01-15T10:00:05Z [REST] Message sent error=None id=msg6",
        "2024-01-15T10:00:06Z [REST] Message sent, No Errors, error=null id=msg7",
        "2024-01-15T10:00:07Z [REST] Message sent WITHOUT ERRORS id=msg8",
        "2024-01-15T10:00:08Z [REST] Message sent, error: <nil> id=msg9",
        # a negation does not hide a failure on the same line
        "2024-01-15T10:00:09Z [REST] no errors in request, but send failed id=msg10",
        "2024-01-15T10:00:10Z [REST] Message send failed: 10 errors id=msg11",
        "2024-01-15T10:00:11Z [REST] Message send failed: errors: 3 id=msg12",
        "2024-01-15T10:00:12Z [REST] Sent, no errors",  # no rule names a bare "Sent"
    ]
    got = collect([_legacy(lines)])
    rows = got.events.collect().select("line", "stage", "action", "msg_id").rows()
    assert rows == [
        *((i, "REST", "response", f"msg{i}") for i in range(1, 10)),
        (10, "REST", "failed", "msg10"),
        (11, "REST", "failed", "msg11"),
        (12, "REST", "failed", "msg12"),
    ]
    i = got.inputs
    assert (i.lines, i.events, i.ignored, i.malformed) == (13, 12, 1, 0)


def test_a_failure_that_only_looks_negated_is_still_a_failure() -> None:
    lines = [
        "2024-01-15T10:00:00Z [REST] Message send error: null id=msg1",  # no message
        "2024-01-15T10:00:01Z [REST] Send error: 0 bytes written id=msg2",
        "2024-01-15T10:00:02Z [REST] Error: none of the recipients could be reached id=msg3",
        "2024-01-15T10:00:03Z [REST] Exception: null id=msg4",
        "2024-01-15T10:00:04Z [REST] Send: 3 failures, 0 errors id=msg5",
    ]
    rows = collect([_legacy(lines)]).events.collect().select("line", "action").rows()
    assert rows == [(i, "failed") for i in range(1, 6)]


def test_negated_errors_in_a_history_load_do_not_end_it_as_failed() -> None:
    lines = [
        "2024-01-15T10:00:00Z [REST] Fetching history conversationId=c1",
        "2024-01-15T10:00:01Z [REST] History loaded without errors conversationId=c1",
        "2024-01-15T10:00:02Z [REST-FETCH] loading conversationId=c1, 0 errors so far",
    ]
    rows = collect([_legacy(lines)]).events.collect().select("line", "action").rows()
    assert rows == [(1, "fetch_start"), (2, "fetch_end"), (3, "fetch_start")]

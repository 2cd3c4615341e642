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

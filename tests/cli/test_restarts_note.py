"""The sentence the reports print for sources whose seq started over (``summary.restarts``)."""

from __future__ import annotations

from tracekit.cli._restarts import restarts_note


def test_each_restart_is_named_with_where_it_began() -> None:
    summary = {
        "restarts": [
            {"source": "client-u2", "file": "logs/u2.jsonl", "line": 40, "mended": True},
            {"source": "chat-1", "file": None, "line": None, "mended": True},
        ]
    }
    assert restarts_note(summary) == (
        "client-u2's seq started over at logs/u2.jsonl:40; chat-1's seq started over: read as "
        "a process restarted under the same source name, its runs compared in the order they "
        "were logged."
    )


def test_a_restart_not_read_run_by_run_says_what_may_be_false() -> None:
    # its seqs did not allow it, or a report from before restarts were read run by run
    summary = {
        "restarts": [
            {"source": "client-u2", "file": "logs/u2.jsonl", "line": 40, "mended": True},
            {"source": "chat-1", "file": "logs/chat.jsonl", "line": 9, "mended": False},
            {"source": "chat-2", "file": None, "line": None},
        ]
    }
    assert restarts_note(summary) == (
        "client-u2's seq started over at logs/u2.jsonl:40: read as a process restarted under "
        "the same source name, its runs compared in the order they were logged. chat-1's seq "
        "started over at logs/chat.jsonl:9; chat-2's seq started over: a process restarted "
        "under the same source name? Order is compared within a source's log, so its "
        "reorders, races and log gaps may be false: give each run its own source name."
    )


def test_nothing_to_say_without_a_restart_or_with_a_report_that_holds_none() -> None:
    # a report read back from a file may hold anything there: what is not a restart is skipped
    for summary in ({}, {"restarts": []}, {"restarts": "x"}, {"restarts": [1, {}, {"line": 3}]}):
        assert restarts_note(summary) is None
    assert restarts_note({"restarts": [7, {"source": "s"}]}) == (
        "s's seq started over: a process restarted under the same source name? Order is "
        "compared within a source's log, so its reorders, races and log gaps may be false: "
        "give each run its own source name."
    )

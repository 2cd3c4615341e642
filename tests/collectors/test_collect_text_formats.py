"""User text formats: a bad value is a FormatError naming the file and key at load time, and
the regexes run on the engine that checked them (Rust's, as polars uses)."""

from __future__ import annotations

from pathlib import Path

import pytest
from collectors_helpers import event, ts

from tracekit.collectors import MemorySource, collect, load_format
from tracekit.collectors._formats import FormatError
from tracekit.errors import InputError

LINE = "line_regex = '^(?P<timestamp>\\S+) (?P<tag>\\w+): (?P<msg>.*)$'\n"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            'timezone = "Mars/Olympus"',
            "timezone: unknown time zone 'Mars/Olympus' (use an IANA name such as 'Europe/Berlin')",
        ),
        (
            'timezone = "localtime"',  # a file zoneinfo finds, a name polars does not know
            "timezone: unknown time zone 'localtime' (use an IANA name such as 'Europe/Berlin')",
        ),
        ("timezone = 5", "timezone: unknown time zone 5 (use an IANA name such as "),
    ],
    ids=["unknown-zone", "not-iana", "not-a-string"],
)
def test_an_unknown_timezone_is_a_format_error(tmp_path: Path, setting: str, message: str) -> None:
    path = tmp_path / "badtz.toml"
    path.write_text(f'name = "badtz"\n{LINE}{setting}\n[aliases]\nSEND = "CTRL.send"\n')
    with pytest.raises(FormatError) as err:
        load_format(path)
    assert str(err.value).startswith(f"{path}: {message}")
    assert isinstance(err.value, InputError)
    with pytest.raises(FormatError):  # collect() loads it the same way: before reading
        collect([MemorySource(["2026-11-25 SEND: x"], name="c.log")], formats=[path])


def test_a_valid_timezone_is_used(tmp_path: Path) -> None:
    path = tmp_path / "berlin.toml"
    path.write_text(
        f'name = "berlin"\n{LINE}timezone = "Europe/Berlin"\n[aliases]\nSEND = "CTRL.send"\n'
    )
    src = MemorySource(["2026-11-25T11:00:00 SEND: hi"], name="client-u1.log")
    frame = collect([src], formats=[path]).events.collect()
    assert frame.get_column("timestamp").to_list() == [ts("10:00:00")]


def test_actor_from_source_runs_with_the_regex_engine_that_checked_it(tmp_path: Path) -> None:
    # \p{L} (any letter) is Rust regex syntax: it passed the load check, then Python's re was
    # run on it and raised re.error.
    path = tmp_path / "pactor.toml"
    path.write_text(
        f'name = "pactor"\n{LINE}'
        "actor_from_source = '^client-(?P<actor>\\p{L}+)'\n"
        "server_from_source = '^\\p{Lu}+-srv'\n"
        '[aliases]\nSEND = "CTRL.send"\n'
    )
    lines = ["2026-11-25T10:00:00Z SEND: hello"]
    got = collect(
        [
            MemorySource(lines, name="client-zoë.log", source_name="client-zoë"),
            MemorySource(lines, name="CHAT-srv.log", source_name="CHAT-srv"),
            MemorySource(lines, name="other.log", source_name="other"),
        ],
        formats=[path],
    )
    frame = got.events.collect()
    assert frame.to_dicts()[0] == event(
        timestamp=ts("10:00:00"),
        stage="CTRL",
        action="send",
        event="hello",
        actor="zoë",
        source="client-zoë",
        file="client-zoë.log",
        line=1,
    )
    assert frame.get_column("actor").to_list() == ["zoë", "server", None]
    assert got.inputs.missing == {"actor": 1, "seq": 3}
    assert (got.inputs.events, got.inputs.unlinked) == (3, 3)  # no ids on the lines


def test_actor_from_source_without_an_actor_group_takes_the_match(tmp_path: Path) -> None:
    path = tmp_path / "whole.toml"
    path.write_text(
        f'name = "whole"\n{LINE}actor_from_source = \'u\\d+\'\n[aliases]\nSEND = "CTRL.send"\n'
    )
    src = MemorySource(["2026-11-25T10:00:00Z SEND: x"], name="app-u7.log", source_name="app-u7")
    assert collect([src], formats=[path]).events.collect().get_column("actor").to_list() == ["u7"]


def test_rules_share_a_named_pattern(tmp_path: Path) -> None:
    path = tmp_path / "pat.toml"
    path.write_text(
        f'name = "pat"\n{LINE}'
        "[patterns]\nbad = '(?:failed|refused)'\n"
        '[[rules]]\ntag = "NET"\nmatch = \'^POST .*{bad}\'\nevent = "REST.failed"\n'
        '[[rules]]\ntag = "NET"\nmatch = \'^POST\'\nevent = "REST.request"\n'
        '[[rules]]\ntag = "WS"\nmatch = \'{bad}\'\nevent = "WS-RECV.failed"\n'
        '[[rules]]\ntag = "WS"\nmatch = \'\\d{2} bytes\'\nevent = "WS-RECV.receive"\n'
    )
    lines = [
        "2026-11-25T10:00:00Z NET: POST /messages refused",
        "2026-11-25T10:00:01Z NET: POST /messages",
        "2026-11-25T10:00:02Z WS: frame failed",
        "2026-11-25T10:00:03Z WS: got 42 bytes",  # a regex's own {2} is no pattern name
    ]
    got = collect([MemorySource(lines, name="c.log")], formats=[path])
    rows = got.events.collect().select("stage", "action").rows()
    assert rows == [
        ("REST", "failed"),
        ("REST", "request"),
        ("WS-RECV", "failed"),
        ("WS-RECV", "receive"),
    ]


def test_rust_style_named_groups_are_read_like_python_style_ones(tmp_path: Path) -> None:
    # polars runs the regex with Rust's engine, which names groups both ways; every group
    # named (?<name>...) was lost (and a (?<tag>...) format refused as having no tag group)
    path = tmp_path / "rusty.toml"
    path.write_text(
        'name = "rusty"\n'
        "line_regex = '^(?<timestamp>\\S+) (?<tag>\\w+): (?<msg>.*?) "
        "conv=(?<conv_id>\\w+) by=(?P<actor>\\w+)$'\n"
        '[aliases]\nSEND = "CTRL.send"\n'
    )
    src = MemorySource(
        ["2026-11-25T10:00:00Z SEND: hello conv=c1 by=u1"], name="client-u1.log", source_name="c"
    )
    got = collect([src], formats=[path])
    assert got.events.collect().to_dicts() == [
        event(
            timestamp=ts("10:00:00"),
            stage="CTRL",
            action="send",
            event="hello",
            conv_id="c1",
            actor="u1",
            source="c",
            file="client-u1.log",
            line=1,
        )
    ]
    assert (got.inputs.lines, got.inputs.events, got.inputs.ignored) == (1, 1, 0)


def test_a_rust_style_tag_group_in_tag_regex(tmp_path: Path) -> None:
    path = tmp_path / "rustytag.toml"
    path.write_text(
        "name = \"rustytag\"\ntag_regex = '<(?<tag>[A-Z]+)> '\n"
        "timestamp_regex = '(\\d{4}-\\d{2}-\\d{2}T\\S+)'\n"
        '[aliases]\nSEND = "CTRL.send"\n'
    )
    src = MemorySource(["2026-11-25T10:00:01Z <SEND> hi"], name="c.log", source_name="c")
    rows = collect([src], formats=[path]).events.collect().select("line", "stage", "action")
    assert rows.rows() == [(1, "CTRL", "send")]


@pytest.mark.parametrize("look", ["(?<=at )", "(?<!x)"])
def test_a_lookbehind_is_a_format_error_that_names_it(tmp_path: Path, look: str) -> None:
    # (?<= and (?<! are look-behinds, not named groups: Rust's regex engine has none
    path = tmp_path / "behind.toml"
    path.write_text(f"name = 'behind'\nline_regex = '^(?P<tag>\\w+): {look}(?P<msg>.*)$'\n")
    with pytest.raises(FormatError) as err:
        load_format(path)
    assert str(err.value) == (
        f"{path}: line_regex: look-behind {look[:4]!r} is not supported (regexes use Rust's "
        "regex syntax, as polars runs them: no look-around)"
    )


def test_an_invalid_regex_names_the_regex_engines_complaint(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("name = 'bad'\nline_regex = '^(?P<tag>\\w+'\n")
    with pytest.raises(FormatError) as err:
        load_format(path)
    assert str(err.value) == f"{path}: line_regex: invalid regex '^(?P<tag>\\\\w+': unclosed group"


def test_a_rules_ignore_regex_is_left_out_of_its_match(tmp_path: Path) -> None:
    path = tmp_path / "ign.toml"
    path.write_text(
        f'name = "ign"\n{LINE}'
        "[patterns]\nok = '(?i)no errors|errors=0'\n"
        "[[rules]]\ntag = \"NET\"\nmatch = '(?i)error'\nignore = '{ok}'\nevent = \"REST.failed\"\n"
        '[[rules]]\ntag = "NET"\nmatch = \'^POST\'\nevent = "REST.request"\n'
    )
    lines = [
        "2026-11-25T10:00:00Z NET: POST /messages ERROR 500",
        "2026-11-25T10:00:01Z NET: POST /messages, no errors",
        "2026-11-25T10:00:02Z NET: POST /messages errors=0, then error 502",
    ]
    rows = collect([MemorySource(lines, name="c.log")], formats=[path]).events.collect()
    assert rows.select("line", "stage", "action").rows() == [
        (1, "REST", "failed"),
        (2, "REST", "request"),
        (3, "REST", "failed"),
    ]
    path.write_text(f'name = "ign"\n{LINE}[[rules]]\nignore = "x"\nevent = "REST.failed"\n')
    with pytest.raises(FormatError) as err:
        load_format(path)
    assert str(err.value) == f"{path}: rules[0].ignore must be a regex, in a rule with a match"


def test_a_msg_group_with_the_time_found_by_timestamp_regex(tmp_path: Path) -> None:
    # the whole line was dropped once a msg group was read, then searched for the time: a raw
    # polars ColumnNotFoundError out of collect()
    path = tmp_path / "msgts.toml"
    path.write_text(
        'name = "msgts"\n'
        "line_regex = '^(?P<pre>\\S+) (?P<tag>\\w+) (?P<msg>.*)$'\n"
        "timestamp_regex = '^(\\S+)'\n"
        "[[rules]]\nmatch = 'send'\nevent = \"CTRL.send\"\n"
    )
    src = MemorySource(["2026-11-25T10:00:00Z CTRL send id=m1"], name="a.log", source_name="a")
    got = collect([src], formats=[path]).events.collect()
    assert got.select("timestamp", "stage", "action", "event").rows() == [
        (ts("10:00:00"), "CTRL", "send", "send id=m1")
    ]


def test_a_field_regex_without_a_group_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "nogroup.toml"
    path.write_text(
        'name = "nogroup"\n'
        "line_regex = '^(?P<timestamp>\\S+) (?P<tag>\\w+) (?P<msg>.*)$'\n"
        "[[rules]]\nmatch = 'send'\nevent = \"CTRL.send\"\n"
        "[fields]\nmsg_id = 'id=\\w+'\n"
    )
    with pytest.raises(FormatError, match=r"fields\.msg_id: 'id=\\\\w\+' has no group"):
        load_format(path)

"""Text formats as configuration: the built-in legacy reader and user-defined TOML formats.

A format file describes one kind of log without code::

    name = "acme"
    line_regex = '^(?P<timestamp>\\S+ \\S+) (?P<level>\\w+) (?P<tag>\\w+): (?P<msg>.*)$'
    timestamp_format = "%Y-%m-%d %H:%M:%S%.f"   # chrono syntax; optional (else auto)
    timezone = "Europe/Berlin"                  # for times without a zone; optional
    [aliases]                                   # tag -> STAGE.action
    SEND = "CTRL.send"
    [[rules]]                                   # or by tag and message regex, first match wins
    tag = "NET"
    match = 'POST /messages'
    event = "REST.request"
    bare = false                                # true: ignore quoted strings, key=value pairs
    ignore = 'without errors?'                  # optional: text the match does not look at
    [patterns]                                  # named regexes a rule's match uses as {name}
    fail = 'failed|error'
    [fields]                                    # more values from the message (one group each)
    msg_id = 'id=(\\w+)'

Named groups of ``line_regex`` may be any schema key (``timestamp``, ``stage``, ``action``,
``trace_id``, ``msg_id``, ``conv_id``, ``actor``, ``peer``, ``source``, ``seq``, ``level``,
``recipients``) plus ``tag``, ``msg``, ``prefix`` and ``client_id``. ``kind = "json"`` with a
``[json_fields]`` table (schema key = input key) reads JSON lines with other key names.
Instead of ``line_regex``, ``tag_regex`` (with a ``tag`` group) finds the tag anywhere in the line:
what comes before it is the ``prefix`` (searched with ``timestamp_regex``), what follows the
``msg``; that is how the built-in legacy format reads any prefix, and it is several times faster
than a whole-line regex. Regexes use Rust's regex syntax (as polars does): named groups as
``(?P<name>...)`` or ``(?<name>...)``, no look-around (a format using it is a FormatError).
A rule without ``tag`` applies to every tag; its ``event`` may be ``"*.action"``: the stage the
row's tag stands for (its alias's stage, else the tag itself), as the legacy format keeps
failures (``"*.failed"``) and retries (``"*.retry"``) as non-hop events of their stage.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import polars as pl

from tracekit.collectors._stats import InputStats
from tracekit.collectors._time import known_zone
from tracekit.errors import InputError

__all__ = ["FormatError", "Rule", "TextFormat", "group_names", "legacy_format", "load_format"]

_ALLOWED_KEYS: Final = frozenset(
    {
        "name",
        "kind",
        "line_regex",
        "tag_regex",
        "tags",
        "timestamp_regex",
        "timestamp_format",
        "timezone",
        "untimed",
        "actor_from_source",
        "server_from_source",
        "aliases",
        "patterns",
        "rules",
        "fields",
        "json_fields",
        "detect",
    }
)


_PATTERN_REF: Final = re.compile(r"\{([A-Za-z_]\w*)\}")


class FormatError(InputError):
    """A format file is invalid; the message names the file and the problem."""


@dataclass(frozen=True)
class Rule:
    tag: str | None
    match: str | None
    event: str  # "STAGE.action"
    bare: bool = False  # match the message without quoted strings and key=value pairs
    ignore: str | None = None  # match the message without what this regex matches


@dataclass(frozen=True)
class TextFormat:
    """One log format; ``read`` turns a file's bytes into event rows."""

    name: str
    line_regex: str = ""
    tag_regex: str = ""
    kind: str = "regex"
    timestamp_regex: str | None = None
    timestamp_format: str | None = None
    timezone: str | None = None
    untimed: str = "malformed"
    actor_from_source: str | None = None
    server_from_source: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)
    json_fields: dict[str, str] = field(default_factory=dict)
    detect: str | None = None
    path: str | None = None

    def identity(self) -> list[Any]:
        """A cache key component: the format file's identity (a file replaced by one of the
        same size and mtime is a new inode with a new ctime), or, for a format built in
        code, its whole content."""
        if self.path is None:
            return [self.name, repr(self)]
        st = Path(self.path).stat()
        return [
            self.name,
            self.path,
            st.st_size,
            st.st_mtime_ns,
            st.st_dev,
            st.st_ino,
            st.st_ctime_ns,
        ]

    def matches(self, sample: bytes) -> bool:
        """True when at least half of the sample's non-blank lines match (detection)."""
        lines = [ln for ln in sample.decode("utf-8", "replace").split("\n") if ln.strip()][:50]
        if not lines:
            return False
        if self.kind == "json":
            return lines[0].lstrip().startswith("{") and all(
                f'"{k}"' in sample.decode("utf-8", "replace") for k in self.json_fields.values()
            )
        pattern = self.detect or self.line_regex or self.tag_regex
        hits = pl.Series(lines).str.contains(pattern).sum()
        return bool(hits * 2 >= len(lines))

    def read(
        self,
        data: bytes,
        *,
        file: str,
        source: str,
        stats: InputStats,
        timezone: str | None = None,
    ) -> pl.DataFrame:
        if self.kind == "json":
            from tracekit.collectors._jsonl import read_jsonl

            return read_jsonl(
                data,
                file=file,
                source=source,
                stats=stats,
                timezone=timezone or self.timezone,
                rename={v: k for k, v in self.json_fields.items()},
                timestamp_format=self.timestamp_format,
            )
        from tracekit.collectors._text import read_text

        return read_text(data, self, file=file, source=source, stats=stats, timezone=timezone)


#: A named group, Python's ``(?P<name>...)`` or Rust's ``(?<name>...)``: polars runs the
#: regexes with Rust's engine, which accepts both. ``(?<=`` and ``(?<!`` are look-behinds.
_NAMED_GROUP: Final = re.compile(r"\(\?P?<([A-Za-z_]\w*)>")
#: A look-behind opening that is not an escaped parenthesis.
_LOOK_BEHIND: Final = re.compile(r"(?<!\\)(?:\\\\)*(\(\?<[=!])")


def group_names(regex: str) -> list[str]:
    """The names of ``regex``'s named groups, in order, however they are written."""
    return _NAMED_GROUP.findall(regex)


def _has_group(regex: str, name: str) -> bool:
    return name in group_names(regex)


def _check_regex(where: str, regex: str) -> None:
    try:
        pl.Series([""], dtype=pl.String).str.contains(regex)
    except pl.exceptions.PolarsError as exc:
        behind = _LOOK_BEHIND.search(regex)
        if behind:
            raise FormatError(
                f"{where}: look-behind {behind.group(1)!r} is not supported (regexes use "
                "Rust's regex syntax, as polars runs them: no look-around)"
            ) from None
        # polars' message: the regex, a caret, "error: <what>", then the expression
        lines = [ln.strip() for ln in str(exc).strip().splitlines()]
        what = next((ln[6:].strip() for ln in lines if ln.startswith("error:")), lines[0])
        raise FormatError(f"{where}: invalid regex {regex!r}: {what}") from None


def _check_timezone(where: str, tz: Any) -> None:
    if not known_zone(tz):
        raise FormatError(
            f"{where}: unknown time zone {tz!r} (use an IANA name such as 'Europe/Berlin')"
        )


def _from_dict(raw: dict[str, Any], where: str, path: str | None) -> TextFormat:
    unknown = set(raw) - _ALLOWED_KEYS
    if unknown:
        raise FormatError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise FormatError(f"{where}: 'name' (a non-empty string) is required")
    kind = raw.get("kind", "regex")
    if kind not in ("regex", "json"):
        raise FormatError(f"{where}: kind must be 'regex' or 'json', not {kind!r}")
    tags = raw.get("tags", [])
    alternation = "|".join(re.escape(t) for t in sorted(tags, key=len, reverse=True))
    line_regex = raw.get("line_regex", "").replace("{tags}", alternation)
    tag_regex = raw.get("tag_regex", "").replace("{tags}", alternation)
    if kind == "regex":
        if bool(line_regex) == bool(tag_regex):
            raise FormatError(f"{where}: give exactly one of 'line_regex' and 'tag_regex'")
        key = "line_regex" if line_regex else "tag_regex"
        _check_regex(f"{where}: {key}", line_regex or tag_regex)
        if line_regex and not (_has_group(line_regex, "tag") or _has_group(line_regex, "stage")):
            raise FormatError(f"{where}: line_regex needs a named group 'tag' or 'stage'")
        if tag_regex and not _has_group(tag_regex, "tag"):
            raise FormatError(f"{where}: tag_regex needs a named group 'tag'")
    elif not raw.get("json_fields"):
        raise FormatError(f"{where}: kind = 'json' needs a [json_fields] table")
    patterns = raw.get("patterns", {})
    if not isinstance(patterns, dict) or not all(isinstance(v, str) for v in patterns.values()):
        raise FormatError(f"{where}: [patterns] must map names to regex strings")

    def expand(match: str) -> str:
        # "{name}" in a rule's match stands for [patterns].name (one word list, many rules)
        return _PATTERN_REF.sub(lambda m: patterns.get(m.group(1), m.group(0)), match)

    rules = []
    for i, r in enumerate(raw.get("rules", [])):
        event = r.get("event")
        if not isinstance(event, str) or "." not in event:
            raise FormatError(f"{where}: rules[{i}].event must look like 'STAGE.action'")
        if r.get("match"):
            r = {**r, "match": expand(r["match"])}
            _check_regex(f"{where}: rules[{i}]", r["match"])
        bare = r.get("bare", False)
        if not isinstance(bare, bool):
            raise FormatError(f"{where}: rules[{i}].bare must be true or false")
        ignore = r.get("ignore")
        if ignore is not None:
            if not isinstance(ignore, str) or not ignore or not r.get("match"):
                raise FormatError(
                    f"{where}: rules[{i}].ignore must be a regex, in a rule with a match"
                )
            ignore = expand(ignore)
            _check_regex(f"{where}: rules[{i}].ignore", ignore)
        rules.append(Rule(r.get("tag"), r.get("match"), event, bare, ignore))
    fields = dict(raw.get("fields", {}))
    for key, regex in fields.items():
        _check_regex(f"{where}: fields.{key}", regex)
        groups = pl.Series([""], dtype=pl.String).str.extract_groups(regex).struct.fields
        if not groups:  # the value is its first group: without one, every value is null
            raise FormatError(
                f"{where}: fields.{key}: {regex!r} has no group; the value is what its first "
                "group matches, e.g. 'id=(\\w+)'"
            )
    for key in ("timestamp_regex", "detect", "actor_from_source", "server_from_source"):
        if raw.get(key):
            _check_regex(f"{where}: {key}", raw[key])
    if "timezone" in raw:
        _check_timezone(f"{where}: timezone", raw["timezone"])
    untimed = raw.get("untimed", "malformed")
    if untimed not in ("malformed", "previous"):
        raise FormatError(f"{where}: untimed must be 'malformed' or 'previous'")
    aliases = dict(raw.get("aliases", {}))
    return TextFormat(
        name=name,
        line_regex=line_regex,
        tag_regex=tag_regex,
        kind=kind,
        timestamp_regex=raw.get("timestamp_regex"),
        timestamp_format=raw.get("timestamp_format"),
        timezone=raw.get("timezone"),
        untimed=untimed,
        actor_from_source=raw.get("actor_from_source"),
        server_from_source=raw.get("server_from_source"),
        aliases=aliases,
        rules=tuple(rules),
        fields=fields,
        json_fields=dict(raw.get("json_fields", {})),
        detect=raw.get("detect"),
        path=path,
    )


def load_format(path: str | Path) -> TextFormat:
    """Load a TOML format file; FormatError (an InputError) names what is wrong."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(f"{p}: format file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{p}: cannot read format file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FormatError(f"{p}: invalid TOML: {exc}") from None
    return _from_dict(raw, str(p), str(p.resolve()))


@cache
def legacy_format() -> TextFormat:
    """The built-in bracket-text format (collectors/legacy.toml)."""
    text = resources.files("tracekit.collectors").joinpath("legacy.toml").read_text("utf-8")
    return _from_dict(tomllib.loads(text), "legacy.toml", None)

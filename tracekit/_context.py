"""The current message, bound through contextvars so nested stages and asyncio tasks inherit it."""

from __future__ import annotations

import contextvars
import functools
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, cast

from tracekit.schema import derived_trace_id, is_trace_id, new_trace_id

__all__ = [
    "MessageContext",
    "bad_id_text",
    "bind",
    "canonical_trace_id",
    "current",
    "derive_trace_id",
    "effective_actor",
    "message",
]


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What every event of one message carries: its trace id and what is known about it.

    ``parent_span_id`` is the remote OpenTelemetry parent learnt from a carrier (``extract``),
    so the spans of this process join the sender's trace under the right parent.
    """

    trace_id: str
    conv_id: str | None = None
    msg_id: str | None = None
    actor: str | None = None
    parent_span_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    # event_fields(), built once: every stage of the message copies it instead of rebuilding
    # it. Read-only by convention (the context is frozen; ``fields`` is not changed in place).
    _event: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        global _last_canonical
        trace_id = self.trace_id
        if trace_id is _last_canonical:  # the common case: replace() of a checked context
            pass
        elif type(trace_id) is str and _CANONICAL.fullmatch(trace_id) and trace_id != _ZERO:
            _last_canonical = trace_id
        else:
            # Not canonical: normalised the way message() does it (a UUID, upper case...), or
            # the derived trace of a bad id, flagged with bad_trace_id.
            canonical = canonical_trace_id(trace_id)
            if canonical is None:
                canonical, text = _bad_trace_id(trace_id, self.actor)
                object.__setattr__(self, "fields", {**self.fields, "bad_trace_id": text})
            object.__setattr__(self, "trace_id", canonical)
        out: dict[str, Any] = {"trace_id": self.trace_id}
        if self.msg_id is not None:
            out["msg_id"] = self.msg_id
        if self.conv_id is not None:
            out["conv_id"] = self.conv_id
        if self.actor is not None:
            out["actor"] = self.actor
        if self.fields:
            out.update(self.fields)
        object.__setattr__(self, "_event", out)

    def event_fields(self) -> dict[str, Any]:
        """The keys this context contributes to an event (fields given to the event win)."""
        return dict(self._event)


class _Unchecked:
    """:class:`MessageContext`'s layout without its frozen ``__setattr__``: ``message()``
    fills one in plain slot stores, then makes it a MessageContext (``__class__``, allowed
    between classes of the same slots): the same object as the dataclass's, equality, repr,
    immutability and all. Its ``__init__`` stores each field through ``object.__setattr__``
    and ``__post_init__`` checks the id again: 1.3 us of the 3.5 a message took unconfigured
    (review 20a). Only for ids already canonical (checked, derived or fresh)."""

    __slots__ = MessageContext.__slots__  # (the same names in the same order)

    def __init__(
        self,
        trace_id: str,
        conv_id: str | None,
        msg_id: str | None,
        actor: str | None,
        parent_span_id: str | None,
        fields: dict[str, Any],
    ) -> None:
        self.trace_id = trace_id
        self.conv_id = conv_id
        self.msg_id = msg_id
        self.actor = actor
        self.parent_span_id = parent_span_id
        self.fields = fields
        # MessageContext.__post_init__'s _event, in its key order (the lines' order)
        out: dict[str, Any] = {"trace_id": trace_id}
        if msg_id is not None:
            out["msg_id"] = msg_id
        if conv_id is not None:
            out["conv_id"] = conv_id
        if actor is not None:
            out["actor"] = actor
        if fields:
            out.update(fields)
        self._event = out


def _context(
    trace_id: str,
    conv_id: str | None,
    msg_id: str | None,
    actor: str | None,
    parent_span_id: str | None,
    fields: dict[str, Any],
) -> MessageContext:
    """``MessageContext(...)`` for a ``trace_id`` known canonical, without checking it again."""
    ctx = _Unchecked(trace_id, conv_id, msg_id, actor, parent_span_id, fields)
    ctx.__class__ = MessageContext  # type: ignore[assignment]
    return cast(MessageContext, ctx)


P = ParamSpec("P")
R = TypeVar("R")

_current: contextvars.ContextVar[MessageContext | None] = contextvars.ContextVar(
    "tracekit_message", default=None
)
# Fields bound without a message (e.g. ``actor`` for a whole connection handler).
_bound: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "tracekit_bound", default=None
)


_CANONICAL = re.compile(r"[0-9a-f]{32}")
_ZERO = "0" * 32
# The last trace id found canonical (compared by identity: a context's replace() passes the
# same string object on, and the check is skipped).
_last_canonical: object = object()
_LENIENT = re.compile(
    r"(?:urn:uuid:)?(\{)?([0-9a-f]{8})(-?)([0-9a-f]{4})\3([0-9a-f]{4})\3([0-9a-f]{4})\3([0-9a-f]{12})(\})?"
)


def canonical_trace_id(value: object) -> str | None:
    """The canonical trace id (32 lowercase hex, not all zero) that ``value`` spells, or None.

    Accepts what plainly names one id: 32 hex digits or a UUID (``uuid.UUID``, dashed, braced
    ``{...}``, ``urn:uuid:...``) in any case, surrounding whitespace, ASCII bytes. Never raises.
    """
    try:
        if isinstance(value, str):
            text = value
        elif isinstance(value, uuid.UUID):
            text = value.hex
        elif isinstance(value, bytes | bytearray):
            text = bytes(value).decode("ascii")
        else:
            return None
        if len(text) > 128:
            return None
        text = text.strip().lower()
        if len(text) == 32:
            return text if _CANONICAL.fullmatch(text) and text != _ZERO else None
        match = _LENIENT.fullmatch(text)
        if match is None or (match.group(1) is None) != (match.group(8) is None):
            return None
        hex32 = "".join(match.group(2, 4, 5, 6, 7))
        return hex32 if hex32 != _ZERO else None
    except Exception:
        return None


def current() -> MessageContext | None:
    """The message bound in this context, if any."""
    return _current.get()


def message(
    ctx: MessageContext | str | None = None,
    *,
    trace_id: str | None = None,
    conv_id: str | None = None,
    msg_id: str | None = None,
    actor: str | None = None,
    **fields: Any,
) -> _MessageScope:
    """Bind a message for the duration of the block.

    ``ctx`` is a :class:`MessageContext` (e.g. from ``extract``) or a trace id (32 hex or a
    client message id UUID); ``trace_id=`` says the same by name (with ``ctx`` too, ``ctx``
    wins: a message has one id). Without one, the enclosing message is refined (e.g. once the
    server knows ``msg_id``) or, outside any message, a fresh trace id is made. Works whether
    or not tracekit is configured: binding is a contextvar set. Usable as a decorator too.

    Never raises: an id that is not a trace id (from the wire, say) gets a derived one (see
    :func:`_bad_id_context`), its events carry ``bad_trace_id`` and ``stats()`` counts it.
    """
    if ctx is None:  # (review 19b: the keyword fell into fields, and a fresh id was made)
        ctx = trace_id
    scope = _new_scope(_MessageScope)  # (no __init__ frame: 0.1 us of a message)
    scope._args = (ctx, conv_id, msg_id, actor, fields)
    return scope


class _MessageScope:
    """:func:`message`'s block: a class, not a generator's context manager (1 us of the
    4 a message took unconfigured, review 19b). The context is made on entering, as the
    generator made it: what is bound then is the outer message. Slotted, without
    ``ContextDecorator`` (whose instances have a ``__dict__``): its ``__call__`` is here."""

    __slots__ = ("_args", "_outer", "_token")

    _args: tuple[MessageContext | str | None, str | None, str | None, str | None, dict[str, Any]]

    def __enter__(self) -> MessageContext:
        outer = _current.get()
        updated = _message_in(outer, *self._args)
        self._outer = outer
        self._token = _current.set(updated)
        return updated

    def __exit__(self, *exc: object) -> None:
        try:  # _reset, inlined
            _current.reset(self._token)
        except ValueError:
            _current.set(self._outer)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """As a decorator: each call of ``fn`` in a block of its own (ContextDecorator's)."""
        args = self._args

        @functools.wraps(fn)
        def inner(*a: P.args, **kw: P.kwargs) -> R:
            scope = _new_scope(_MessageScope)
            scope._args = args
            with scope:
                return fn(*a, **kw)

        return inner


_new_scope = object.__new__


def _message_in(
    outer: MessageContext | None,
    ctx: MessageContext | str | None,
    conv_id: str | None,
    msg_id: str | None,
    actor: str | None,
    fields: dict[str, Any],
) -> MessageContext:
    """The message :func:`message` binds inside ``outer`` (None: none bound). Every id here is
    canonical (checked, derived or fresh): the context is built unchecked, once."""
    if outer is None and type(ctx) is str:
        # the usual call, a new message by its id (already canonical: one regex match)
        tid = ctx if len(ctx) == 32 and _CANONICAL.fullmatch(ctx) else canonical_trace_id(ctx)
        if tid is not None and tid != _ZERO:
            made = _Unchecked(tid, conv_id, msg_id, actor, None, fields)  # (_context, inlined)
            made.__class__ = MessageContext  # type: ignore[assignment]
            return made  # type: ignore[return-value]
    if isinstance(ctx, MessageContext):
        base = ctx
    elif ctx is not None:
        trace_id = canonical_trace_id(ctx)
        base = (
            _context(trace_id, None, None, None, None, {})
            if trace_id
            else _bad_id_context(ctx, actor)
        )
    elif outer is not None:
        base = outer
    else:
        base = _context(new_trace_id(), None, None, None, None, {})
    c, m, a, p, f = base.conv_id, base.msg_id, base.actor, base.parent_span_id, base.fields
    if outer is not None and base is not outer and base.trace_id == outer.trace_id:
        # Same message seen again deeper in the call tree: keep what the outer scope knew.
        c, m, a = c or outer.conv_id, m or outer.msg_id, a or outer.actor
        p, f = p or outer.parent_span_id, {**outer.fields, **f}
    return _context(
        base.trace_id,
        conv_id if conv_id is not None else c,
        msg_id if msg_id is not None else m,
        actor if actor is not None else a,
        p,
        {**f, **fields} if fields else f,
    )


def _reset(var: contextvars.ContextVar[Any], token: contextvars.Token[Any], previous: Any) -> None:
    """Undo a ``var.set``. Exited in another context than it was entered in (an async generator
    left by ``break`` is finalised in a new task), the token cannot be used: set the previous
    value there instead of raising into the app. The entering context keeps the binding (a
    contextvar of another context cannot be reached)."""
    try:
        var.reset(token)
    except ValueError:
        var.set(previous)


def _bad_id_context(given: object, actor: str | None = None) -> MessageContext:
    trace_id, text = _bad_trace_id(given, actor)  # (derived: canonical)
    return _context(trace_id, None, None, None, None, {"bad_trace_id": text})


def bad_id_text(given: object) -> str:
    """How an id that is no trace id is written under ``bad_trace_id`` (and seeds its derived
    trace): the string itself or its ``str()``, at most 200 characters, always UTF-8 writable."""
    try:
        text = given if isinstance(given, str) else str(given)
        if not isinstance(text, str):
            raise TypeError
    except Exception:
        text = f"<{type(given).__name__}>"
    return text[:200].encode("utf-8", "backslashreplace").decode()


def derive_trace_id(text: str, owner: object) -> str:
    """The one rule for the trace of an id that is no trace id (``text``: its
    :func:`bad_id_text`): ``sha256("tracekit-derived:" + owner + "\x1f" + text)[:32]``, as the
    collectors derive one for a client temp id, scoped to ``owner``, the actor in effect for
    the events (see :func:`effective_actor`); without one (unconfigured, no actor bound) the
    text alone is the seed. An empty or all-zero id, which would put unrelated messages in one
    trace, gets a fresh trace id."""
    if text.strip().strip("0-"):
        seed = f"{owner}\x1f{text}" if isinstance(owner, str) else text
        derived = derived_trace_id(seed)
        if is_trace_id(derived):
            return derived
    return new_trace_id()


def effective_actor(actor: object) -> str | None:
    """The actor the events of a message (or bound block) will carry: ``actor`` (the call's)
    if a string, else the bound ``actor``, else the configured emitter's (None unconfigured)."""
    if isinstance(actor, str):
        return actor
    bound = _bound.get()
    if bound is not None and isinstance(bound.get("actor"), str):
        return cast(str, bound["actor"])
    try:
        from tracekit import _core  # here, not at import: _core imports this module

        emitter = _core._active()
    except Exception:
        return None
    owner = getattr(emitter, "actor", None)
    return owner if isinstance(owner, str) else None


def _bad_trace_id(given: object, actor: str | None = None) -> tuple[str, str]:
    """The trace id and ``bad_trace_id`` text of an id that is not a trace id: derived by
    :func:`derive_trace_id` for the actor in effect (:func:`effective_actor`); counted in
    ``stats()["bad_trace_ids"]``. The same id of one actor is one trace in every process and
    every API (``message()``, ``bind()``, ``stage()``/``emit(trace_id=...)``); u1's ``tmp-1``
    and u2's ``tmp-1`` are two."""
    text = bad_id_text(given)
    try:
        from tracekit import _core  # here, not at import: _core imports this module

        emitter = _core._active()
        if emitter is not None:
            emitter.bad_trace_ids += 1
    except Exception:
        pass
    return derive_trace_id(text, effective_actor(actor)), text


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Bind event fields (e.g. ``actor``, ``conv_id``) for the block, message or not.

    A ``trace_id`` is normalised as ``message()`` does it (a UUID is its hex); an id that is
    no trace id gets a derived one and ``bad_trace_id``."""
    if "trace_id" in fields:
        given = fields["trace_id"]
        trace_id = canonical_trace_id(given)
        if trace_id is None:
            actor = fields.get("actor")  # else the bound one (outer bind), else configured
            trace_id, fields["bad_trace_id"] = _bad_trace_id(
                given, actor if isinstance(actor, str) else None
            )
        fields["trace_id"] = trace_id
    outer = _bound.get()
    token = _bound.set({**outer, **fields} if outer else dict(fields))
    try:
        yield
    finally:
        _reset(_bound, token, outer)

"""Rebuild every message's path and find what went wrong, and where.

``analyze(events)`` runs every analyzer over an event table (``tracekit.table.EVENT_SCHEMA``,
or just its :data:`INPUT_COLUMNS`) and returns a :class:`Report`; the ``find_*`` functions run
one finding kind each (``LazyFrame -> LazyFrame`` in :data:`FINDING_SCHEMA`, report order) and
:func:`timeline` shows one message's path.

Choices where DESIGN.md leaves room (each module's docstring says why):

- Expected recipients are the ``recipients`` of ``WS-BROADCAST.start``; the sender is a
  recipient exactly when the broadcast names them. Without a list (legacy servers), every user
  seen in the conversation (senders, recipients, history loads) except the sender, plus whoever
  the logs show receiving it; ``summary.recipients_from`` counts messages per method.
- A drop is the first missing hop of a path with no later hop reached (a later hop reached means
  the message got through and only evidence is missing). The grace window counts back from the
  end of the logs as a whole (latest corrected timestamp of any source) to when the last
  hop's line was written (a stage's at its end: its stamp plus ``duration_ms``); a message
  without a
  send whose first event lies within the time a hop may take (``Pipeline.hop_window``, or the
  grace window where longer) after the logs begin is ``in_flight`` (sent before the logs), not
  ``unexpected``.
- Order (reorders, races, removals) is compared by ``seq`` inside one source's log (without
  ``seq``, as in legacy text, by time with ties in line order); timestamps only across sources,
  and then clock-corrected. The table's rows are each file's lines in the order they were
  read (as the collectors give them): a process restarted under its name starts its ``seq``
  over, and where its runs are is read from that order (a table sorted by ``source, seq``
  puts the runs' lines side by side: the restart is lost; sorted by time it is kept).
- Clock offsets come from every cross-source pipeline edge as difference constraints (NTP on
  request/persist/response, causal bound on deliver/receive); ``uncertainty_ms`` is null when
  only a one-sided bound exists. The offset is the middle of the consistent interval where
  exchanges with no retried hop bound the source on both sides; otherwise (a client whose only
  exchanges were retried, one that only receives) it is the point of the interval nearest zero:
  clocks are taken as in sync unless the logs force an offset. Two hops a client logs for one
  user on two different sources (two devices) are neither a clock pair nor a latency. A finding
  needs ``|offset|`` above the pipeline's ``clock_skew_ms`` (100 ms) and above its uncertainty,
  or pairs that contradict causality.
- ``REST.request``, ``REST.persist`` and ``REST.response`` may repeat (client retries, idempotent
  persists); a second canonical ``msg_id`` is still a duplicate. A recipient with several
  devices (sources) gets each of its own hops once per device and one server write per device
  whose log runs at the time (a restarted client is not a second device): only repeats beyond
  that are duplicates. Reorders are checked per device log. A drop is
  judged per recipient and, where several devices logged the recipient's hops, per device: a
  device that received a message and stopped short of a hop another device reached is a drop on
  that device (the seed bug on a phone whose tablet showed the message), judged against the end
  of that device's own log (a process that ended right after is in flight, not a drop); a
  device that logged nothing of it is offline, not judged. A path whose last hop was retried is judged from the
  last attempt.
- A message taken off a recipient's store after ``final`` (the pipeline's ``remove`` role,
  ``CTRL.remove``: a history page that replaced the store) is a ``drop`` at ``final`` on that
  device, ``last_seen`` = ``final`` (:mod:`._removed`).
- ``TRACEKIT.dropped`` meta events are log gaps too (the only signal in logs without ``seq``).
  A source whose first ``seq`` is above 1 lost its beginning: a gap with no line before it.
  Events a reading leaves out on purpose (a time window: ``analyze(..., left_out=)``, the
  CLI's ``--since``/``--until``) are no loss: the gaps they fill make no finding and hold
  paths back only over their own stamps (:mod:`._window`).
- A source is one process instance (DESIGN.md); a process restarted under the same name (its
  ``seq`` back to where it began, logged after everything before it) stays one source (one
  clock, one device) whose runs are read one after another: positions ``run << 40 | seq``,
  log gaps and history fetch windows per run (a fetch open at the restart ended there).
  ``summary.restarts`` says where each began, and ``mended: false`` where its seqs could not
  be packed (outside ``[0, 2**40)``): that source's order findings may then be false
  (``_paths._restarts``, ``_paths._runs``).
"""

from tracekit.analyzers._api import (
    find_clock_skew,
    find_drops,
    find_duplicates,
    find_in_flight,
    find_latency_outliers,
    find_log_gaps,
    find_races,
    find_reorders,
    find_slo_breaches,
    find_unexpected,
)
from tracekit.analyzers._findings import FINDING_SCHEMA, KINDS
from tracekit.analyzers._paths import INPUT_COLUMNS
from tracekit.analyzers._pipeline import Hop, Pipeline, default_pipeline, load_pipeline
from tracekit.analyzers._report import REPORT_SCHEMA, Report, analyze, timeline

__all__ = [
    "FINDING_SCHEMA",
    "INPUT_COLUMNS",
    "KINDS",
    "REPORT_SCHEMA",
    "Hop",
    "Pipeline",
    "Report",
    "analyze",
    "default_pipeline",
    "find_clock_skew",
    "find_drops",
    "find_duplicates",
    "find_in_flight",
    "find_latency_outliers",
    "find_log_gaps",
    "find_races",
    "find_reorders",
    "find_slo_breaches",
    "find_unexpected",
    "load_pipeline",
    "timeline",
]

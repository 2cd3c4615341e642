"""Property tests on generated histories: clean -> no finding; one fault -> exactly its finding."""

from __future__ import annotations

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from tracekit.analyzers import analyze
from tracekit.synth import FAULT_KINDS, Expected, generate

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _generate(seed, **kw):
    """``generate``, with histories it says it cannot build (no room for a fault in so few
    messages or users) rejected as examples rather than failed."""
    try:
        return generate(seed, **kw)
    except ValueError as exc:
        assert "generate more messages" in str(exc) or "use more users" in str(exc)
        reject()


def _found(report) -> list[Expected]:
    out = []
    for r in report.findings.iter_rows(named=True):
        source_level = r["kind"] in ("log_gap", "clock_skew")
        out.append(
            Expected(
                r["kind"],
                r["trace_id"],
                r["recipient"],
                r["stage"],
                r["last_seen"],
                r["source"] if source_level else None,
            )
        )
    return sorted(out, key=repr)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    users=st.integers(2, 8),
    conversations=st.integers(1, 4),
    include_sender=st.booleans(),
    offset=st.floats(0.0, 45.0),
    unnamed=st.sampled_from([0.0, 0.5]),
    reconnects=st.sampled_from([0.0, 0.1]),
    single=st.booleans(),
    devices=st.sampled_from([0.0, 0.3]),
)
def test_clean_histories_have_no_findings(
    seed, users, conversations, include_sender, offset, unnamed, reconnects, single, devices
):
    synth = generate(
        seed,
        messages=40,
        users=users,
        conversations=conversations,
        include_sender=include_sender,
        clock_offset_ms=offset,
        unnamed=unnamed,
        reconnects=reconnects,
        single_member=single,
        second_devices=devices,
        retries=0.1,
        history_loads=0.2,
    )
    report = analyze(synth.frame().lazy())
    assert report.findings.is_empty(), report.findings.to_dicts()
    assert report.summary["delivered"] == report.summary["deliveries_expected"]
    for c in report.clock:  # the true offset lies within the estimate's uncertainty
        if c["uncertainty_ms"] is not None:
            true = synth.sources[c["source"]]
            assert abs(c["offset_ms"] - true) <= c["uncertainty_ms"] + 1e-3


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    fault=st.sampled_from(FAULT_KINDS),
    devices=st.sampled_from([0.0, 0.25]),
)
def test_one_fault_gives_exactly_its_findings(seed, fault, devices):
    synth = _generate(
        seed,
        messages=60,
        users=8,
        conversations=3,
        max_members=4,
        second_devices=devices,
        faults=[fault],
    )
    report = analyze(synth.frame().lazy())
    assert _found(report) == sorted(synth.truth, key=repr)


def test_every_fault_kind_once():
    for n, fault in enumerate(FAULT_KINDS):
        synth = generate(n, messages=60, users=8, conversations=3, max_members=4, faults=[fault])
        report = analyze(synth.frame().lazy())
        assert _found(report) == sorted(synth.truth, key=repr), fault


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    faults=st.lists(st.sampled_from(FAULT_KINDS), min_size=2, max_size=4),
)
def test_several_faults_give_exactly_their_findings(seed, faults):
    synth = _generate(seed, messages=100, users=10, conversations=3, max_members=4, faults=faults)
    report = analyze(synth.frame().lazy())
    assert _found(report) == sorted(synth.truth, key=repr)


def test_names_as_text_or_categorical_give_the_same_report():
    """The event table keeps names Categorical; a table of text (an old cache, a hand-built
    frame) must give exactly the same report."""
    import polars as pl
    from polars.testing import assert_frame_equal

    from tracekit.analyzers._findings import FINDING_SCHEMA

    synth = generate(3, messages=80, users=12, conversations=3, max_members=4, faults=FAULT_KINDS)
    compact = synth.frame()
    assert compact.schema["trace_id"] == pl.Categorical()
    text = compact.with_columns(pl.col(pl.Categorical).cast(pl.String))
    a, b = analyze(compact.lazy()), analyze(text.lazy())
    assert_frame_equal(a.findings, b.findings)
    assert a.findings.schema == FINDING_SCHEMA  # names come out as text either way
    assert a.to_dict() == b.to_dict()
    assert _found(a) == sorted(synth.truth, key=repr)

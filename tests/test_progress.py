"""Progress of running fits: the plain-line display, the FitProgress rows and ``mmc status``."""
from __future__ import annotations

import contextlib
import io
import math

import pytest

from pipeline.progress import (FitProgressReporter, FitSample, PlainLineDisplay, RateMeter, format_duration,
                               format_line)
from tests.fit_fixtures import TEST_PARAMS_NAME, add_test_params, insert_synthetic_session, tiny_session


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_line_format_and_durations():
    sample = FitSample(label="bilevel_fit S01/2024-01-01", step=119, total_steps=2000, loss=12.3456, it_per_s=8.06,
                       eta_s=232.0)
    assert format_line(sample) == "bilevel_fit S01/2024-01-01: step 120/2000 loss 12.35 8.1 it/s ETA 3m52s"
    unknown = FitSample(label="x", step=0, total_steps=10, loss=1.0, it_per_s=math.nan, eta_s=math.nan)
    assert format_line(unknown) == "x: step 1/10 loss 1 - it/s ETA ?"
    assert (format_duration(42.2), format_duration(3725), format_duration(60)) == ("42s", "1h02m", "1m00s")


def test_rate_counts_from_the_first_report_and_gives_the_eta():
    clock = FakeClock()
    meter = RateMeter(clock)
    first = meter.sample("x", 9, 1000, 5.0)  # after compilation
    assert math.isnan(first.it_per_s) and math.isnan(first.eta_s)
    clock.now += 10.0
    later = meter.sample("x", 109, 1000, 4.0)
    assert later.it_per_s == pytest.approx(10.0) and later.eta_s == pytest.approx(89.0)


def test_plain_lines_are_rate_limited():
    clock, stream = FakeClock(), io.StringIO()
    with PlainLineDisplay(stream, every_s=5.0, clock=clock)("fit") as show:
        for step in range(0, 100, 10):  # one report per second for 10 s
            show(FitSample("fit", step, 100, 1.0, math.nan, math.nan))
            clock.now += 1.0
    lines = stream.getvalue().splitlines()
    assert [line.split(":")[1].split()[1] for line in lines] == ["1/100", "51/100"]  # t = 0 s and t = 5 s


def test_reporter_without_a_terminal_writes_plain_lines():
    clock, stream = FakeClock(), io.StringIO()
    reporter = FitProgressReporter(stream=stream, publish=False, clock=clock, line_every_s=5.0)
    with reporter("`p_fitting`.`_bilevel_fit`", {"subject_id": "S01", "session_id": "A"}) as report:
        for step in range(0, 60, 10):
            report(step, 60, 2.0)
            clock.now += 3.0
    assert stream.getvalue().splitlines() == ["bilevel_fit S01/A: step 1/60 loss 2 - it/s ETA ?",
                                              "bilevel_fit S01/A: step 21/60 loss 2 3.3 it/s ETA 12s",
                                              "bilevel_fit S01/A: step 41/60 loss 2 3.3 it/s ETA 6s"]  # t=0, 6, 12 s


@pytest.mark.db
def test_progress_row_lives_while_a_fit_runs_and_status_shows_it(activated_schemas, db_prefix, db_connection,
                                                                  capsys):
    import schemas
    from pipeline import cli
    from pipeline.progress import _upsert, running_fits
    from pipeline.provenance import provenance
    from schemas import fitting, jobs, model

    model.ensure_default_model()
    add_test_params()
    session_key = insert_synthetic_session(tiny_session(seed=31), subject_id="P_progress")
    key = dict(session_key, base_model="body40", params_name=TEST_PARAMS_NAME)
    fitting.FitTask.insert1(key)
    stream = io.StringIO()
    reporter = FitProgressReporter(stream=stream, interactive=False, publish_every_s=0.0, line_every_s=0.0)
    seen: list[list[dict]] = []

    @contextlib.contextmanager
    def recording(table_name, fit_key):
        with reporter(table_name, fit_key) as report:
            def spy(step, total_steps, loss):
                report(step, total_steps, loss)
                seen.append(running_fits())
            yield spy

    schemas.activate(db_prefix, db_connection, provenance=provenance, progress=recording)
    try:
        fitting.BilevelFit.populate(key)
    finally:
        schemas.activate(db_prefix, db_connection, provenance=provenance)
    assert len(fitting.BilevelFit & key) == 1
    assert seen and all(len(rows) == 1 for rows in seen), seen
    last = seen[-1][0]
    assert last["step"] == 29 and last["total_steps"] == 30 and last["table_name"] == fitting.BilevelFit.full_table_name
    assert "bilevel_fit P_progress" in stream.getvalue()
    assert len(jobs.FitProgress()) == 0  # deleted when the fit ended
    stop_reason, iterations = (fitting.BilevelFit & key).fetch1("stop_reason", "iterations")
    assert (stop_reason, iterations) == ("step budget: 30 steps", 30)

    # a fit running elsewhere: `mmc status` lists it with its host
    sample = FitSample("x", 499, 2000, 3.25, 12.5, 120.0)
    row_key = dict(table_name=fitting.BilevelFit.full_table_name, key_hash="0" * 40)
    _upsert(row_key, '{"subject_id":"P_elsewhere"}', sample)
    try:
        assert cli.main(["--prefix", db_prefix, "status"]) == 0
        out = capsys.readouterr().out
        assert "fits running (1):" in out
        assert "bilevel_fit P_elsewhere: step 500/2000 loss 3.25 12.5 it/s ETA 2m00s  on " in out, out
    finally:
        (jobs.FitProgress & row_key).delete_quick()


def test_a_failed_progress_write_is_reported_and_never_ends_the_fit(capsys):
    from pipeline.progress import publish_failed

    def dropped_connection(*_):
        raise ConnectionError("server went away")

    assert publish_failed(dropped_connection, {}, "{}", None) is True
    assert "progress not published" in capsys.readouterr().err
    assert publish_failed(lambda: None) is False


def test_plain_lines_go_to_the_current_stderr_not_the_one_at_construction(monkeypatch):
    import io
    import sys

    from pipeline.progress import FitSample, PlainLineDisplay

    display = PlainLineDisplay(None, every_s=0.0)
    replaced = io.StringIO()
    monkeypatch.setattr(sys, "stderr", replaced)
    with display("fit") as show:
        show(FitSample("fit", 3, 10, 1.5, 2.0, 3.5))
    assert "fit" in replaced.getvalue()

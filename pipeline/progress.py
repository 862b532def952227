"""Progress of the fits while they run: on the terminal, in logs, and in the database for ``mmc status``.

``schemas.activate(..., progress=FitProgressReporter())`` makes every fit table enter
``reporter(table_name, key)`` around its computation; the fit calls the yielded ``(step, total_steps, loss)``
callback at each divergence check.  Each report

* updates a display: a rich progress bar when stderr is a terminal, otherwise one plain line every
  ``line_every_s`` seconds (so a log file gets a line per few seconds, not one per step);
* upserts the fit's ``schemas.jobs.FitProgress`` row at most every ``publish_every_s`` seconds (one
  autocommitted ``REPLACE`` on the tables' connection, no lock held across steps: the computation of a
  three-part ``make`` runs outside any transaction).  The row is deleted when the fit ends, whatever the outcome.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.jobs import this_host
from schemas.jobs import FitProgress

__all__ = ["FitSample", "RateMeter", "format_line", "format_duration", "PlainLineDisplay", "RichDisplay",
           "FitProgressReporter", "running_fits", "format_running_fits"]


@dataclass(frozen=True)
class FitSample:
    """One progress report of one fit: step (0-based) of total_steps, its loss, steps per second (NaN before
    a second report) and the estimated seconds left (NaN when unknown)."""

    label: str
    step: int
    total_steps: int
    loss: float
    it_per_s: float
    eta_s: float


class RateMeter:
    """Steps per second since the first report (excludes compilation, which happens before it)."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._first: tuple[int, float] | None = None

    def sample(self, label: str, step: int, total_steps: int, loss: float) -> FitSample:
        now = self._clock()
        if self._first is None:
            self._first = (step, now)
        first_step, first_time = self._first
        rate = (step - first_step) / (now - first_time) if now > first_time and step > first_step else math.nan
        eta = (total_steps - 1 - step) / rate if rate > 0 else math.nan
        return FitSample(label=label, step=step, total_steps=total_steps, loss=loss, it_per_s=rate, eta_s=eta)


def format_duration(seconds: float) -> str:
    """``"1h02m"``, ``"3m07s"``, ``"42s"``; ``"?"`` when unknown."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def format_line(sample: FitSample) -> str:
    """``"BilevelFit S01/2024-01-01: step 120/2000 loss 12.34 8.1 it/s ETA 3m52s"`` (steps shown 1-based)."""
    rate = f"{sample.it_per_s:.1f}" if math.isfinite(sample.it_per_s) else "-"
    return (f"{sample.label}: step {sample.step + 1}/{sample.total_steps} loss {sample.loss:.4g} "
            f"{rate} it/s ETA {format_duration(sample.eta_s)}")


class PlainLineDisplay:
    """One line per fit to ``stream`` at the first report and then at most every ``every_s`` seconds."""

    def __init__(self, stream: TextIO | None, every_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        # None: whatever sys.stderr is when a line is printed (a long-lived process may replace or close the
        # stream it started with, e.g. a test harness capturing output)
        self._stream, self._every_s, self._clock = stream, every_s, clock

    @contextlib.contextmanager
    def __call__(self, label: str) -> Iterator[Callable[[FitSample], None]]:
        last_line = -math.inf

        def show(sample: FitSample) -> None:
            nonlocal last_line
            now = self._clock()
            if now - last_line >= self._every_s:
                last_line = now
                print(format_line(sample), file=self._stream or sys.stderr, flush=True)

        yield show


class RichDisplay:
    """A transient rich progress bar per fit (step, loss, it/s, ETA) on ``console``; nests inside another live
    display of the same console (``mmc demo``'s bars)."""

    def __init__(self, console: Console):
        self._console = console

    @contextlib.contextmanager
    def __call__(self, label: str) -> Iterator[Callable[[FitSample], None]]:
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]}  {task.fields[rate]} it/s  ETA"), TimeRemainingColumn())
        with Progress(*columns, console=self._console, transient=True) as bar:
            task = bar.add_task(label, total=None, loss="-", rate="-")

            def show(sample: FitSample) -> None:
                rate = f"{sample.it_per_s:.1f}" if math.isfinite(sample.it_per_s) else "-"
                bar.update(task, completed=sample.step + 1, total=sample.total_steps, loss=f"{sample.loss:.4g}",
                           rate=rate)

            yield show


def _key_json(key: dict) -> str:
    return json.dumps({k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
                       for k, v in key.items()}, sort_keys=True, separators=(",", ":"))


def fit_label(table_name: str, key: dict) -> str:
    """``"bilevel_fit S01/2024-01-01/cpu_default"``: the table's name without schema and tier prefix, then the
    key's values in key order."""
    name = table_name.rsplit(".", 1)[-1].strip("`").lstrip("_#~")
    return f"{name} {'/'.join(str(v) for v in key.values())}"


class FitProgressReporter:
    """The progress factory handed to ``schemas.activate``: ``reporter(table_name, key)`` is a context
    manager yielding the fit's ``(step, total_steps, loss)`` callback (see the module docstring).

    console: rich console of an enclosing display (``mmc demo``); interactive: rich bar (True) or plain lines
    (False), default ``stream.isatty()``; publish: keep the FitProgress row (False: display only).
    """

    def __init__(self, *, console: Console | None = None, stream: TextIO | None = None,
                 interactive: bool | None = None, line_every_s: float = 5.0, publish_every_s: float = 3.0,
                 publish: bool = True, clock: Callable[[], float] = time.monotonic):
        interactive = (stream or sys.stderr).isatty() if interactive is None else interactive
        if interactive:
            # Console(stderr=True) looks sys.stderr up at each write rather than keeping today's object
            self._display: Any = RichDisplay(console or (Console(file=stream) if stream else Console(stderr=True)))
        else:
            self._display = PlainLineDisplay(stream, line_every_s, clock)
        self._publish, self._publish_every_s, self._clock = publish, publish_every_s, clock

    @contextlib.contextmanager
    def __call__(self, table_name: str, key: dict) -> Iterator[Callable[[int, int, float], None]]:
        label = fit_label(table_name, key)
        key_json = _key_json(key)
        row_key = dict(table_name=table_name, key_hash=hashlib.sha1(key_json.encode()).hexdigest())
        meter = RateMeter(self._clock)
        last_publish = -math.inf
        with self._display(label) as show:
            def report(step: int, total_steps: int, loss: float) -> None:
                nonlocal last_publish
                sample = meter.sample(label, step, total_steps, loss)
                show(sample)
                now = self._clock()
                if self._publish and now - last_publish >= self._publish_every_s:
                    last_publish = now
                    publish_failed(_upsert, row_key, key_json, sample)

            try:
                yield report
            finally:
                if self._publish:
                    publish_failed(lambda: (FitProgress & row_key).delete_quick())


def publish_failed(write: Callable[..., None], *args) -> bool:
    """Run one FitProgress write; a failure (a dropped connection, a server restart) is reported on stderr and
    never ends the fit it describes: progress is a display, the fit is the work. Returns True if it failed."""
    try:
        write(*args)
    except Exception as error:  # noqa: BLE001 - any database error; the fit goes on
        print(f"warning: progress not published to the database: {type(error).__name__}: {error}",
              file=sys.stderr, flush=True)
        return True
    return False


def _upsert(row_key: dict, key_json: str, sample: FitSample) -> None:
    """REPLACE the fit's FitProgress row (keeps ``started``; ``updated`` is the server's clock)."""
    rate = sample.it_per_s if math.isfinite(sample.it_per_s) else None
    loss = sample.loss if math.isfinite(sample.loss) else None
    FitProgress().connection.query(
        f"INSERT INTO {FitProgress().full_table_name} (table_name, key_hash, key_json, host, pid, step, total_steps, "
        "loss, it_per_s, started, updated) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, NOW(3), NOW(3)) "
        "ON DUPLICATE KEY UPDATE step=VALUES(step), total_steps=VALUES(total_steps), loss=VALUES(loss), "
        "it_per_s=VALUES(it_per_s), host=VALUES(host), pid=VALUES(pid), updated=NOW(3)",
        args=(row_key["table_name"], row_key["key_hash"], key_json, this_host(), os.getpid(), int(sample.step),
              int(sample.total_steps), loss, rate))


def running_fits() -> list[dict]:
    """Every FitProgress row with ``age_s`` (seconds since its last update, database server time)."""
    rows = FitProgress().connection.query(
        f"SELECT table_name, key_json, host, pid, step, total_steps, loss, it_per_s, "
        f"TIMESTAMPDIFF(MICROSECOND, updated, NOW(3)) / 1e6 FROM {FitProgress().full_table_name} "
        "ORDER BY started").fetchall()
    names = ("table_name", "key_json", "host", "pid", "step", "total_steps", "loss", "it_per_s", "age_s")
    return [dict(zip(names, row)) for row in rows]


def format_running_fits(rows: list[dict]) -> list[str]:
    """``mmc status`` lines: one per running fit, with its host, progress and the age of the report."""
    lines = []
    for row in rows:
        key = json.loads(row["key_json"]) if isinstance(row["key_json"], str) else row["key_json"]
        rate = float(row["it_per_s"]) if row["it_per_s"] is not None else math.nan
        loss = float(row["loss"]) if row["loss"] is not None else math.nan
        eta = (row["total_steps"] - 1 - row["step"]) / rate if rate > 0 else math.nan
        sample = FitSample(label=fit_label(row["table_name"], key), step=int(row["step"]),
                           total_steps=int(row["total_steps"]), loss=loss, it_per_s=rate, eta_s=eta)
        lines.append(f"  {format_line(sample)}  on {row['host']} pid {row['pid']} "
                     f"(updated {float(row['age_s']):.0f} s ago)")
    return lines

"""Jobs that survive interruption: heartbeats, stale reservations, clean exits on SIGTERM/SIGINT.

How DataJoint 2.x distributes work: every Computed table has a jobs table (``~~bilevel_fit`` …) with one row per
key of its key source and a ``status`` among ``pending``, ``reserved``, ``success``, ``error``, ``ignore``.
``Job.refresh()`` adds the missing keys as ``pending``; ``Job.reserve(key)`` turns one ``pending`` row into
``reserved`` atomically (one ``UPDATE … WHERE status='pending'``) and records ``host``, ``pid``,
``connection_id`` and ``reserved_time``; ``Job.complete`` deletes the row (or marks it ``success``) and
``Job.error`` marks it ``error``, which is never retried until the row is deleted. Two gaps matter for long fits:

- nothing updates a reservation while its computation runs, so a worker that dies without running Python
  (``kill -9``, a lost node, an out-of-memory kill) leaves the key reserved forever; ``Job.refresh`` only knows
  an age-based ``orphan_timeout``, which cannot tell a dead worker from a fit that takes hours;
- ``populate(reserve_jobs=True)`` catches ``KeyboardInterrupt`` and ``SystemExit`` around ``make`` and marks the
  job ``error`` (a SLURM preemption's SIGTERM becomes a failure that is never retried; a Ctrl-C skips to the
  next key).

What this module adds, keeping DataJoint's jobs tables and their atomic ``reserve``:

- a heartbeat (:class:`Heartbeat`): each worker keeps a ``schemas.jobs.WorkerHeartbeat`` row keyed by the same
  ``(host, pid)`` that DataJoint writes into reservations, refreshed every ``interval_s`` seconds from a
  background thread on its own connection (the main connection may be inside a transaction or a long fetch);
- stale reservations (:func:`stale_reason`): a reservation made on this host whose process is gone is stale at
  once; one made elsewhere is stale when its worker has not beaten for ``MISSED_BEATS`` intervals (or, without
  any heartbeat row, when it was reserved that long ago). :func:`release_stale` deletes such reservations (and
  the dead worker's heartbeat row), so the next ``refresh`` makes the key ``pending`` again;
- :func:`populate_reserved`: DataJoint's reserve → make → complete/error cycle, one key at a time, where an
  interruption is not an error: under :class:`WorkerGuard`, SIGTERM/SIGINT make the main thread raise
  :class:`WorkerInterrupted` (a ``BaseException`` that ``populate`` does not catch) while a watcher thread,
  woken at once even when the main thread is inside XLA, deletes this process's reservations (the keys go back
  to the queue) and ends the process with ``128 + signal`` (143 for SIGTERM, 130 for SIGINT);
- plain-language errors (:func:`job_error_message`): a fit whose session was deleted while it ran records
  "the Session … was deleted while BilevelFit ran; nothing was stored" instead of a database traceback.
"""
from __future__ import annotations

import datetime
import os
import platform
import signal
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from types import FrameType
from typing import Any, Callable, Iterable

HEARTBEAT_INTERVAL_S = 30.0  # default seconds between beats
MISSED_BEATS = 3  # a worker on another host is presumed gone after this many missed beats
INTERRUPTING_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class WorkerInterrupted(BaseException):
    """SIGTERM/SIGINT reached a worker. A ``BaseException`` (like ``KeyboardInterrupt``) that DataJoint's
    ``populate`` does not catch, so the interrupted key is never recorded as an error."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        """The shell's convention for death by a signal: 128 + signal number (SIGTERM 143, SIGINT 130)."""
        return 128 + self.signum


def this_host() -> str:
    """The host name DataJoint writes into the jobs tables' ``host`` column."""
    return platform.node()


def process_alive(pid: int) -> bool:
    """True when a process with this id exists on this machine (signal 0 probes without sending anything)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


# ------------------------------------------------------------------------------------------ stale reservations
@dataclass(frozen=True)
class Reservation:
    """One ``reserved`` row of a jobs table, with its worker's heartbeat when it has one.

    table: name of the computed table (``BilevelFit``); key: the job's primary key; reserved_time, last_beat:
    database server time; interval_s: the worker's promised seconds between beats (None without heartbeat).
    """

    table: str
    key: dict
    host: str
    pid: int
    reserved_time: datetime.datetime
    last_beat: datetime.datetime | None = None
    interval_s: float | None = None


def stale_reason(reservation: Reservation, *, now: datetime.datetime, host: str,
                 alive: Callable[[int], bool] = process_alive,
                 default_interval_s: float = HEARTBEAT_INTERVAL_S) -> str | None:
    """Why ``reservation`` is stale, or None while its worker may still be running.

    now: the database server's current time (the reservation's times are server times); host: this machine's
    name; alive: whether a pid exists on this machine. Same host: stale exactly when the process is gone. Other
    host: stale when the last sign of life (heartbeat, else the reservation itself) is older than
    ``MISSED_BEATS`` × the worker's interval (``default_interval_s`` without a heartbeat row).
    """
    if reservation.host == host:
        if alive(reservation.pid):
            return None
        return f"process {reservation.pid} on this host ({host}) is gone"
    last_sign = reservation.last_beat or reservation.reserved_time
    timeout_s = MISSED_BEATS * (reservation.interval_s or default_interval_s)
    silent_s = (now - last_sign).total_seconds()
    if silent_s <= timeout_s:
        return None
    what = "heartbeat" if reservation.last_beat is not None else "heartbeat (none recorded; reserved)"
    return (f"no {what} from process {reservation.pid} on {reservation.host} for {silent_s:.0f} s "
            f"(timeout {timeout_s:.0f} s)")


def server_now(connection) -> datetime.datetime:
    """The database server's current time at millisecond precision (the jobs tables' clock)."""
    return connection.query("SELECT CURRENT_TIMESTAMP(3)").fetchone()[0]


def reservations(tables: dict[str, Any], heartbeat_table) -> list[Reservation]:
    """Every ``reserved`` job of ``tables`` ({name: computed table}), joined with its worker's heartbeat."""
    beats = {(row["host"], int(row["pid"])): row
             for row in heartbeat_table.to_dicts()}
    found = []
    for name, table in tables.items():
        jobs = table.jobs
        for row in jobs.reserved.to_dicts(order_by="reserved_time"):
            beat = beats.get((row["host"], int(row["pid"])))
            found.append(Reservation(
                table=name, key={k: row[k] for k in jobs.primary_key}, host=row["host"], pid=int(row["pid"]),
                reserved_time=row["reserved_time"], last_beat=beat["last_beat"] if beat else None,
                interval_s=float(beat["interval_s"]) if beat else None))
    return found


def stale_reservations(tables: dict[str, Any], heartbeat_table, *,
                       default_interval_s: float = HEARTBEAT_INTERVAL_S) -> list[tuple[Reservation, str]]:
    """[(reservation, reason)] for every stale reservation of ``tables`` (see :func:`stale_reason`)."""
    now = server_now(heartbeat_table.connection)
    host = this_host()
    stale = []
    for reservation in reservations(tables, heartbeat_table):
        reason = stale_reason(reservation, now=now, host=host, default_interval_s=default_interval_s)
        if reason is not None:
            stale.append((reservation, reason))
    return stale


def release(tables: dict[str, Any], heartbeat_table, stale: Iterable[tuple[Reservation, str]]) -> int:
    """Delete these reservations (only while still reserved by the same worker) and their workers' heartbeat
    rows; the next ``Job.refresh`` makes the keys ``pending`` again. Returns how many reservations went."""
    released = 0
    workers = set()
    for reservation, _reason in stale:
        worker = dict(host=reservation.host, pid=reservation.pid)
        released += (tables[reservation.table].jobs.reserved & reservation.key & worker).delete_quick(
            get_count=True)
        workers.add((reservation.host, reservation.pid))
    for host, pid in workers:
        (heartbeat_table & dict(host=host, pid=pid)).delete_quick()
    return released


def release_stale(tables: dict[str, Any], heartbeat_table, *,
                  default_interval_s: float = HEARTBEAT_INTERVAL_S) -> list[tuple[Reservation, str]]:
    """Find and release the stale reservations of ``tables``; returns them with their reasons."""
    stale = stale_reservations(tables, heartbeat_table, default_interval_s=default_interval_s)
    release(tables, heartbeat_table, stale)
    return stale


# ------------------------------------------------------------------------------------------------ heartbeat
def side_connection(connection):
    """A second DataJoint connection with ``connection``'s credentials (for a thread, or after an interrupt
    left the main connection mid-query)."""
    import datajoint as dj

    info = connection.conn_info
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the main connection already warned about a MariaDB server
        return dj.Connection(info["host"], info["user"], info["passwd"], info["port"],
                             use_tls=info.get("ssl_input"))


class Heartbeat:
    """Keep this process's ``WorkerHeartbeat`` row fresh from a daemon thread, on a connection of its own.

    ``start()`` inserts (or replaces) the row ``(this_host(), os.getpid())``; the thread then sets ``last_beat``
    to the server time every ``interval_s`` seconds; ``stop()`` ends the thread and deletes the row. The fit
    itself runs in compiled XLA code that releases the GIL, so the thread beats while a fit runs.
    """

    def __init__(self, heartbeat_table, main_connection, interval_s: float = HEARTBEAT_INTERVAL_S):
        self.table_name = heartbeat_table.full_table_name
        self.interval_s = float(interval_s)
        self.host = this_host()
        self.pid = os.getpid()
        self.connection = side_connection(main_connection)
        self._main_connection_id = int(main_connection.connection_id)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="mmc-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self.query(f"REPLACE INTO {self.table_name} (host, pid, started, last_beat, interval_s, connection_id) "
                   "VALUES (%s, %s, CURRENT_TIMESTAMP(3), CURRENT_TIMESTAMP(3), %s, %s)",
                   (self.host, self.pid, self.interval_s, self._main_connection_id))
        self._thread.start()
        return self

    def query(self, sql: str, args: tuple = ()):
        """Run ``sql`` on the heartbeat's connection (serialised with the beats)."""
        with self._lock:
            return self.connection.query(sql, args=args)

    def beat(self) -> None:
        self.query(f"UPDATE {self.table_name} SET last_beat = CURRENT_TIMESTAMP(3) WHERE host = %s AND pid = %s",
                   (self.host, self.pid))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()

    def stop(self) -> None:
        """End the beats and delete the row (once; later calls do nothing)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(5.0, 2 * self.interval_s))
        self.query(f"DELETE FROM {self.table_name} WHERE host = %s AND pid = %s", (self.host, self.pid))
        self.connection.close()


# ------------------------------------------------------------------------------------------- interruptions
class WorkerGuard:
    """Context manager around a worker's whole life: heartbeat, and a clean exit on SIGTERM/SIGINT.

    A Python signal handler runs only when the main thread executes Python, and a fit's main thread may sit in
    compiled XLA code (or an XLA compilation) for minutes, longer than SLURM's grace period before SIGKILL. So
    the signal is also written to a wake-up pipe (``signal.set_wakeup_fd``) that a watcher thread reads at once:
    the watcher deletes every job of ``tables`` still reserved by this process (on the heartbeat's connection,
    the main one may be mid-query or mid-transaction), removes the heartbeat row, prints one line through
    ``announce`` and ends the process with ``os._exit(128 + signal)``: 143 for SIGTERM, 130 for SIGINT. Ending
    there skips the interpreter's teardown while XLA threads run, and the server rolls back any transaction
    the closed connection held. Meanwhile the main thread's handler waits for the watcher, and raises
    :class:`WorkerInterrupted` (uncaught by ``populate``) only if the watcher has already gone.
    Must be entered in the main thread.
    """

    def __init__(self, tables: dict[str, Any], heartbeat_table, connection,
                 interval_s: float = HEARTBEAT_INTERVAL_S, announce: Callable[[str], None] = print):
        self.tables = tables
        self.heartbeat = Heartbeat(heartbeat_table, connection, interval_s)
        self.announce = announce
        self._previous_handlers: dict[int, Any] = {}
        self._previous_wakeup_fd = -1
        self._pipe: tuple[int, int] | None = None
        self._watcher: threading.Thread | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # The watcher thread ends the process (os._exit) once it has released this worker's jobs: the main thread
        # only waits for it. Raising at once instead would surface wherever the main thread happens to be, e.g.
        # inside a garbage-collection callback, where Python prints the exception as a traceback and carries on.
        if self._watcher is not None and self._watcher.is_alive():
            self._watcher.join()
        raise WorkerInterrupted(signum)

    def __enter__(self) -> "WorkerGuard":
        self.heartbeat.start()
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # required by set_wakeup_fd
        self._pipe = (read_fd, write_fd)
        self._previous_wakeup_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for signum in INTERRUPTING_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        self._watcher = threading.Thread(target=self._watch, args=(read_fd,), name="mmc-signal-watcher",
                                         daemon=True)
        self._watcher.start()
        return self

    def _watch(self, read_fd: int) -> None:
        while True:
            received = os.read(read_fd, 1)  # one byte per signal; empty when the guard closes the pipe
            if not received:
                return
            if received[0] in INTERRUPTING_SIGNALS:
                self._release_and_exit(received[0])

    def _release_and_exit(self, signum: int) -> None:
        exit_code = WorkerInterrupted(signum).exit_code
        try:
            released = self.release_own_reservations()
            self.heartbeat.stop()
            self.announce(f"[worker {os.getpid()}] {signal.Signals(signum).name}: stopped; {released} running "
                          f"job(s) went back to the queue")
        except Exception as error:  # the database is gone too: the reservation is stale once we have exited
            self.announce(f"[worker {os.getpid()}] {signal.Signals(signum).name}: stopped; could not release "
                          f"its job ({error.__class__.__name__}: {error}); `mmc jobs --release-stale` will")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exit_code)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, WorkerInterrupted) and self._watcher is not None:
            self._watcher.join()  # it ends the process
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        if self._pipe is not None:
            os.close(self._pipe[1])  # the watcher reads end-of-file and returns
            self._watcher.join()
            os.close(self._pipe[0])
        self.heartbeat.stop()
        return False

    def release_own_reservations(self) -> int:
        """Delete the jobs of ``tables`` reserved by this process; returns how many."""
        released = 0
        for table in self.tables.values():
            cursor = self.heartbeat.query(
                f"DELETE FROM {table.jobs.full_table_name} WHERE status = 'reserved' AND host = %s AND pid = %s",
                (self.heartbeat.host, self.heartbeat.pid))
            released += cursor.rowcount
        return released


# ------------------------------------------------------------------------------------------------- populate
def _key_text(key: dict) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in key.items())


def deleted_upstream(table, key: dict) -> tuple[str, dict] | None:
    """(table name, key) of the most upstream row of ``key`` that no longer exists, or None when all exist.

    Looks at the table's ancestors whose primary key is part of ``key`` (Subject, Session, FitTask … for a
    fit); the one with the shortest primary key among the missing is the row someone deleted.
    """
    from datajoint.utils import to_camel_case

    missing = []
    for ancestor in table.ancestors(as_objects=True):
        names = ancestor.primary_key
        if ancestor.full_table_name == table.full_table_name or not set(names) <= set(key):
            continue
        sub_key = {name: key[name] for name in names}
        if not len(ancestor & sub_key):
            missing.append((len(names), to_camel_case(ancestor.table_name.lstrip("_#~")), sub_key))
    if not missing:
        return None
    _, name, sub_key = min(missing, key=lambda item: item[0])
    return name, sub_key


def job_error_message(table_name: str, table, key: dict, error: BaseException) -> str:
    """The one-line error recorded for a failed key: plain language when the key's inputs were deleted while
    it ran, else ``ExceptionClass: message`` as DataJoint records it."""
    gone = deleted_upstream(table, key)
    if gone is not None:
        name, sub_key = gone
        return (f"the {name} ({_key_text(sub_key)}) was deleted while {table_name} ran; nothing was stored "
                f"and the job will not be retried")
    message = str(error)
    return f"{error.__class__.__name__}: {message}" if message else error.__class__.__name__


def pending_keys(table, restrictions: tuple, max_calls: int | None) -> list[dict]:
    """Keys of ``table``'s ``pending`` jobs due now, restricted like its key source, most urgent first."""
    import datajoint as dj

    jobs = table.jobs
    jobs.refresh(*restrictions, delay=-1)  # delay -1: due at once on the server's clock
    pending = jobs.pending & "scheduled_time <= CURRENT_TIMESTAMP(3)"
    if restrictions:
        wanted = (table.key_source & dj.AndList(restrictions)).proj()
        pending = pending.restrict(wanted, semantic_check=False)  # jobs' key lineage differs from key_source's
    return pending.keys(order_by="priority ASC, scheduled_time ASC", limit=max_calls)


def populate_reserved(table, *restrictions, table_name: str | None = None, max_calls: int | None = None,
                      on_error: Callable[[dict, str], None] | None = None) -> dict:
    """Compute ``table``'s pending jobs one at a time through DataJoint's jobs table.

    Each key is reserved with ``table.jobs.reserve`` (atomic), made with ``table.populate(key)`` (the table's
    own ``make``, three-part or not), then ``complete``d, or marked ``error`` with :func:`job_error_message`
    and the traceback. :class:`WorkerInterrupted` is not caught: the key stays reserved until
    :class:`WorkerGuard` releases it. Returns ``{"success_count": int, "error_list": [(key, message)]}`` like
    ``populate``; ``on_error(key, message)`` is called as each key fails.
    """
    name = table_name or table.__class__.__name__
    jobs = table.jobs
    made, errors = 0, []
    for key in pending_keys(table, restrictions, max_calls):
        if not jobs.reserve(key):
            continue  # another worker was faster
        started = time.time()
        result = table.populate(key, suppress_errors=True, return_exception_objects=True,
                                display_progress=False)
        if result["error_list"]:
            _, error = result["error_list"][0]
            message = job_error_message(name, table, key, error)
            stack = "".join(traceback.format_exception(error))
            jobs.error(key, error_message=message, error_stack=stack)
            errors.append((key, message))
            if on_error is not None:
                on_error(key, message)
            continue
        jobs.complete(key, duration=time.time() - started)
        made += result["success_count"]
    return {"success_count": made, "error_list": errors}

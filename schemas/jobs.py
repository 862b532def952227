"""Worker liveness: one heartbeat row per running worker process, so a reservation can outlive nobody.

DataJoint 2.x reserves a key by setting its row of the table's jobs table (``~~bilevel_fit`` …) to
``status='reserved'`` with the worker's ``host``, ``pid``, ``connection_id`` and ``reserved_time``. Nothing in that
row changes while the computation runs, so a worker killed outright (``kill -9``, a lost node) leaves the key
reserved forever. A worker therefore also keeps a row here, keyed by the same ``(host, pid)``, and refreshes
``last_beat`` (database server time) every few seconds from a background thread while it runs. A reservation
whose worker has no recent beat, or whose process is gone from its host, is stale and may be released.

A fit being computed also keeps a ``FitProgress`` row (step, loss, speed, host) so that ``mmc status`` on any
machine shows the fits running anywhere; the computing process refreshes it every few seconds and deletes it
when the fit ends (a row whose ``updated`` stops advancing belongs to a fit that died).
"""
from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import datajoint as dj

schema = dj.Schema()


@schema
class WorkerHeartbeat(dj.Manual):
    definition = """
    # a running worker process; last_beat is refreshed while it runs (database server time)
    host : varchar(255)                 # network name of the worker's machine, as in the jobs tables' host
    pid : int32                         # process id on that host, as in the jobs tables' pid
    ---
    started : datetime(3)               # when the worker started
    last_beat : datetime(3)             # most recent heartbeat
    interval_s : float32                # seconds between beats the worker promised
    connection_id : int64               # its main database connection (SHOW PROCESSLIST id)
    """


@schema
class FitProgress(dj.Manual):
    definition = """
    # a fit being computed: refreshed every few seconds by the process computing it, deleted when the fit ends
    table_name : varchar(255)           # full name of the computed table, e.g. `mmc_fitting`.`_bilevel_fit`
    key_hash : char(40)                 # SHA-1 of key_json
    ---
    key_json : json                     # the key being computed
    host : varchar(255)                 # network name of the computing machine
    pid : int32                         # its process id
    step : int32                        # latest checked step (0-based)
    total_steps : int32                 # step budget of the fit
    loss = null : float64               # total loss at that step
    it_per_s = null : float32           # steps per second since the first report (null before a second report)
    started : datetime(3)               # first report (database server time)
    updated : datetime(3)               # latest report (database server time)
    """

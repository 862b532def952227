"""``mmc params``: a lab adds a named parameter set from the command line (e.g. camera time offsets on), and a
misspelt field or a wrong type is a one-line error that stores nothing."""
from __future__ import annotations

import json
import uuid

import pytest

from pipeline.cli import main

pytestmark = pytest.mark.db


def test_add_show_and_list_a_parameter_set(db_prefix, activated_schemas, capsys):
    from compute.params import PARAMETER_SETS

    fitting = activated_schemas["fitting"]
    name = f"sync_{uuid.uuid4().hex[:8]}"
    assert main(["--prefix", db_prefix, "params", "add", name, "--from", "cpu_sparse",
                 "--set", "bundle_adjustment.fit_time_offsets=true",
                 "--set", "bundle_adjustment.max_time_offset_s=0.1"]) == 0
    stored = fitting.FitParams.load(name)
    expected = PARAMETER_SETS["cpu_sparse"].replace(fit_time_offsets=True, max_time_offset_s=0.1)
    assert stored == expected and stored.hash == expected.hash
    capsys.readouterr()
    assert main(["--prefix", db_prefix, "params", "show", name]) == 0
    assert json.loads(capsys.readouterr().out)["bundle_adjustment"]["fit_time_offsets"] is True
    assert main(["--prefix", db_prefix, "params", "list"]) == 0
    listed = capsys.readouterr().out
    assert name in listed and "cpu_sparse" in listed
    # the same parameters under a second name are refused, naming the first
    assert main(["--prefix", db_prefix, "params", "add", f"{name}b", "--from", name]) == 2
    assert name in capsys.readouterr().err


def test_list_says_when_a_packaged_set_changed_after_the_database_stored_it(db_prefix, activated_schemas, capsys,
                                                                              monkeypatch):
    """An update that changes a packaged set (here cpu_sparse's Huber threshold) leaves the stored row alone;
    ``mmc params list`` says what differs and prints the command that stores the packaged version."""
    from compute.params import PARAMETER_SETS

    fitting = activated_schemas["fitting"]
    assert main(["--prefix", db_prefix, "params", "list"]) == 0
    assert "note:" not in capsys.readouterr().out            # the database holds the packaged sets
    updated = PARAMETER_SETS["cpu_sparse"].replace(huber_delta_px=2.5)
    monkeypatch.setitem(PARAMETER_SETS, "cpu_sparse", updated)
    assert main(["--prefix", db_prefix, "params", "list"]) == 0
    note = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(note) == 1 and "cpu_sparse now differs from this database's in loss.huber_delta_px;" in note[0]
    command = note[0].split("To use the packaged ones: mmc ")[1].replace("'", "").split()
    name = f"sparse_{uuid.uuid4().hex[:8]}"
    command[2] = name                                          # `params add cpu_sparse_v2 ...` under a fresh name
    assert main(["--prefix", db_prefix, *command]) == 0
    assert fitting.FitParams.load(name).hash == updated.hash  # the printed command stores the packaged set


@pytest.mark.parametrize("setting, message", [
    ("bundle_adjustment.fit_time_offset=true", "no field 'fit_time_offset' in bundle_adjustment"),
    ("bundles.fit_time_offsets=true", "no section 'bundles'"),
    ("optimiser.steps=many", "expected a value like"),
    ("fit_time_offsets=true", "expected SECTION.FIELD=VALUE"),
])
def test_bad_settings_are_one_line_errors_and_store_nothing(db_prefix, activated_schemas, capsys, setting, message):
    fitting = activated_schemas["fitting"]
    before = len(fitting.FitParams())
    assert main(["--prefix", db_prefix, "params", "add", "bad_set", "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert len(fitting.FitParams()) == before

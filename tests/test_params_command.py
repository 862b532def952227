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

"""``mmc warmup`` plans the buckets a lab's sessions will need (no compiling here: that is the benchmark's)."""
from __future__ import annotations

import argparse

import pytest

from pipeline.commands.warmup import jobs_from_args


def warmup_args(**changes) -> argparse.Namespace:
    values = dict(prefix="unused", keypoint_set=["COCO17", "MOVI87"], params=None, cameras=[4, 8], trials=[1],
                  frames=[512], jobs=None, max_minutes=5.0)
    values.update(changes)
    return argparse.Namespace(**values)


def test_each_keypoint_set_is_warmed_with_the_parameter_set_populate_gives_it():
    jobs = jobs_from_args(warmup_args())
    assert {(j.keypoint_set, j.params_name) for j in jobs} == {("COCO17", "cpu_sparse"), ("MOVI87", "cpu_default")}
    assert [j.n_cameras for j in jobs][:2] == [8, 8]                      # largest buckets first
    named = jobs_from_args(warmup_args(params=["cpu_full_budget"]))
    assert {j.params_name for j in named} == {"cpu_full_budget"} and len(named) == 4


@pytest.mark.parametrize("changes, message", [
    (dict(keypoint_set=["BODY99"]), "--keypoint-set: 'BODY99'"),
    (dict(params=["fast"]), "--params: 'fast'"),
])
def test_unknown_names_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        jobs_from_args(warmup_args(**changes))

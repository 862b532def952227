"""TrilevelFit on the real database: a SubjectGroup of three tiny sessions, a TrilevelTask with the ``test_tiny``
parameters (30 steps), populate → a new BaseModel row whose parent is the starting model, with marker rows for
every keypoint set (the fitted set replaced, the others copied), heel sites unchanged, and one Member row per
session. Structure only: trilevel accuracy is tested in tests/test_trilevel.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.fit_fixtures import TEST_PARAMS_NAME, add_test_params, insert_synthetic_session, tiny_session

pytestmark = pytest.mark.db

GROUP = "tri_test"
N_SUBJECTS = 3


@pytest.fixture(scope="module")
def trilevel_key(activated_schemas):
    from schemas import fitting, model

    base_model = model.ensure_default_model()
    add_test_params()
    members = [insert_synthetic_session(tiny_session(seed=40 + k), subject_id=f"TRI{k}")
               for k in range(N_SUBJECTS)]
    fitting.SubjectGroup.insert1(dict(subject_group=GROUP, description="tests: three tiny sessions"))
    fitting.SubjectGroup.Member.insert([dict(m, subject_group=GROUP) for m in members])
    key = dict(subject_group=GROUP, base_model=base_model, params_name=TEST_PARAMS_NAME)
    fitting.TrilevelTask.insert1(dict(key, seed=1, subjects_per_batch=2))
    result = fitting.TrilevelFit.populate(key, suppress_errors=True)
    assert result["success_count"] == 1, result["error_list"]
    return key


def test_trilevel_fit_row_and_members(trilevel_key):
    from schemas import fitting

    fit = (fitting.TrilevelFit & trilevel_key).fetch1()
    assert fit["keypoint_set"] == "MOVI87" and fit["seed"] == 1
    assert fit["iterations"] > 0 and fit["wall_time_s"] > 0 and np.isfinite(fit["final_loss"])
    assert fit["loss_history"].ndim == 2 and np.isfinite(fit["loss_history"]).all()
    assert fit["code_version"] and fit["package_versions"]["jax"]
    assert fit["site_change_mm"].shape == (87,) and np.isfinite(fit["site_change_mm"]).all()
    members = (fitting.TrilevelFit.Member & trilevel_key).to_dicts(order_by="subject_id")
    assert [m["subject_id"] for m in members] == [f"TRI{k}" for k in range(N_SUBJECTS)]
    assert all(m["log_scale"].shape == (8,) and np.isfinite(m["log_scale"]).all() for m in members)


def test_result_is_a_new_base_model_whose_parent_is_the_starting_model(trilevel_key):
    from schemas import fitting, model

    result_model = (fitting.TrilevelFit & trilevel_key).fetch1("result_model")
    assert result_model != trilevel_key["base_model"]
    assert (model.BaseModel.Parent & {"base_model": result_model}).fetch1("parent_model") == trilevel_key["base_model"]
    parent, child = (model.BaseModel & {"base_model": trilevel_key["base_model"]}).fetch1(), \
        (model.BaseModel & {"base_model": result_model}).fetch1()
    assert child["mjcf_xml"] == parent["mjcf_xml"] and child["content_hash"] != parent["content_hash"]
    np.testing.assert_array_equal(child["scale_matrix"], parent["scale_matrix"])


def test_new_model_has_sites_for_every_keypoint_set_and_frozen_heels(trilevel_key):
    from schemas import acquisition, fitting, model

    result_model = (fitting.TrilevelFit & trilevel_key).fetch1("result_model")
    for keypoint_set in [r["keypoint_set"] for r in acquisition.KeypointSet.keys()]:
        before = model.marker_sites(trilevel_key["base_model"], keypoint_set)
        after = model.marker_sites(result_model, keypoint_set)
        assert after.marker_names == before.marker_names and after.bodies == before.bodies
        np.testing.assert_array_equal(after.heel_mask, before.heel_mask)
        if keypoint_set != "MOVI87":  # not fitted: copied from the parent
            np.testing.assert_array_equal(after.sites, before.sites)
    before = model.marker_sites(trilevel_key["base_model"], "MOVI87")
    after = model.marker_sites(result_model, "MOVI87")
    assert before.heel_mask.any()
    np.testing.assert_array_equal(after.sites[before.heel_mask], before.sites[before.heel_mask])
    moved = np.linalg.norm(after.sites - before.sites, axis=1)[~before.heel_mask]
    assert moved.max() > 0 and moved.max() < 0.05  # 30 small steps: sites move, but by millimetres
    change = (fitting.TrilevelFit & trilevel_key).fetch1("site_change_mm")
    np.testing.assert_allclose(change, 1000 * np.linalg.norm(after.sites - before.sites, axis=1), atol=1e-6)


def test_new_model_can_be_used_for_a_bilevel_fit_task(trilevel_key):
    from schemas import fitting

    result_model = (fitting.TrilevelFit & trilevel_key).fetch1("result_model")
    session = dict(subject_id="TRI0", session_id="2024-01-01")
    fitting.FitTask.insert1(dict(session, base_model=result_model, params_name=TEST_PARAMS_NAME))
    (inputs,) = fitting.BilevelFit().make_fetch(dict(session, base_model=result_model, params_name=TEST_PARAMS_NAME))
    assert inputs["sites"].shape == (87, 3)


def test_deleting_the_task_cascades_to_the_fit(trilevel_key):
    from schemas import fitting, model

    result_model = (fitting.TrilevelFit & trilevel_key).fetch1("result_model")
    (fitting.TrilevelTask & trilevel_key).delete(prompt=False)
    assert not (fitting.TrilevelFit & trilevel_key) and not (fitting.TrilevelFit.Member & trilevel_key)
    assert model.BaseModel & {"base_model": result_model}  # the model outlives the fit that produced it

"""OpenSim .mot / .trc / .osim, C3D and CSV exports: headers as the readers expect them, values round-trip;
``export_fits`` on the real database writes one ``.osim`` per fit (scaled model, fitted markers, subject mass)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.exporters import (
    TrialExport,
    export_trials,
    joint_angles_frame,
    opensim_to_world,
    parse_restrictions,
    read_mot,
    read_trc,
    world_to_opensim,
    write_markers_csv,
    write_mot,
    write_trc,
)

JOINTS = ("pelvis_tx", "pelvis_ty", "pelvis_tz", "pelvis_tilt", "pelvis_list", "pelvis_rotation",
          "hip_flexion_r", "knee_angle_r", "ankle_angle_r", "hip_flexion_l", "knee_angle_l", "ankle_angle_l")
MARKERS = ("lhee", "ltoe", "rhee", "rtoe", "pelv")


@pytest.fixture
def trial() -> TrialExport:
    rng = np.random.default_rng(7)
    n_frames = 45
    times = np.arange(n_frames) / 30.0
    qpos = rng.uniform(-1.0, 1.0, (n_frames, len(JOINTS)))
    qpos[:, 0] = 1.2 * times  # walking along +X
    qpos[:, 1] = 0.05
    qpos[:, 2] = 0.93  # pelvis height (world Z up)
    markers = rng.uniform(-1.0, 2.0, (n_frames, len(MARKERS), 3))
    markers[3, 1] = np.nan  # a missing marker
    return TrialExport("S01_walk01", times, qpos, JOINTS, markers, MARKERS, fps=30.0)


def test_axis_conversion_is_a_rotation_to_y_up():
    z_up = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(world_to_opensim(z_up), [[0, 1, 0], [1, 0, 0], [0, 0, -1]], atol=0)
    points = np.random.default_rng(0).normal(size=(10, 3))
    np.testing.assert_allclose(opensim_to_world(world_to_opensim(points)), points, atol=1e-12)


def test_mot_header_and_values_in_degrees(tmp_path, trial):
    path = write_mot(tmp_path / "walk.mot", trial.times, trial.qpos, trial.joint_names, name="walk")
    lines = path.read_text().splitlines()
    assert lines[0] == "walk"
    assert lines[1] == "version=1"
    assert "endheader" in lines
    header, table = read_mot(path)
    assert header["version"] == "1"
    assert header["inDegrees"] == "yes"
    assert int(header["nRows"]) == len(trial.times) == len(table)
    assert int(header["nColumns"]) == len(JOINTS) + 1 == table.shape[1]
    assert list(table.columns) == ["time", *JOINTS]
    np.testing.assert_allclose(table["time"], trial.times, atol=1e-8)
    for j, name in enumerate(JOINTS[3:], start=3):
        np.testing.assert_allclose(table[name], np.degrees(trial.qpos[:, j]), atol=1e-6)
    # translations stay in metres, rotated into OpenSim's Y-up ground: (x, z, -y)
    np.testing.assert_allclose(table["pelvis_tx"], trial.qpos[:, 0], atol=1e-8)
    np.testing.assert_allclose(table["pelvis_ty"], trial.qpos[:, 2], atol=1e-8)
    np.testing.assert_allclose(table["pelvis_tz"], -trial.qpos[:, 1], atol=1e-8)


def test_mot_world_axes_keeps_translations(tmp_path, trial):
    path = write_mot(tmp_path / "w.mot", trial.times, trial.qpos, trial.joint_names, opensim_axes=False)
    _, table = read_mot(path)
    np.testing.assert_allclose(table[["pelvis_tx", "pelvis_ty", "pelvis_tz"]], trial.qpos[:, :3], atol=1e-8)


def test_trc_header_follows_opensim_layout(tmp_path, trial):
    path = write_trc(tmp_path / "walk.trc", trial.times, trial.markers, trial.marker_names, units="mm")
    lines = path.read_text().splitlines()
    assert lines[0].split("\t")[:3] == ["PathFileType", "4", "(X/Y/Z)"]
    assert lines[1].split("\t") == ["DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units",
                                    "OrigDataRate", "OrigDataStartFrame", "OrigNumFrames"]
    assert [c for c in lines[3].split("\t") if c] == ["Frame#", "Time", *MARKERS]
    assert [c for c in lines[4].split("\t") if c] == [f"{a}{i}" for i in range(1, 6) for a in "XYZ"]
    assert lines[5] == ""  # OpenSim skips blank lines between header and data
    for row in lines[6:]:
        assert len(row.split("\t")) == 2 + 3 * len(MARKERS)  # OpenSim's RowLengthMismatch check
    header, times, markers, names = read_trc(path)
    assert header["DataRate"] == header["CameraRate"] == header["OrigDataRate"] == pytest.approx(30.0)
    assert header["NumFrames"] == header["OrigNumFrames"] == len(trial.times)
    assert header["NumMarkers"] == len(MARKERS)
    assert header["Units"] == "mm"
    assert header["OrigDataStartFrame"] == 1
    assert names == MARKERS
    assert [int(r.split("\t")[0]) for r in lines[6:]] == list(range(1, len(trial.times) + 1))
    np.testing.assert_allclose(times, trial.times, atol=1e-6)


@pytest.mark.parametrize("units, tolerance_m", [("mm", 1e-8), ("m", 1e-6)])
def test_trc_values_round_trip_with_missing_markers(tmp_path, trial, units, tolerance_m):
    path = write_trc(tmp_path / f"walk_{units}.trc", trial.times, trial.markers, trial.marker_names, units=units)
    _, _, stored, _ = read_trc(path)
    scale = 1000.0 if units == "mm" else 1.0
    expected = world_to_opensim(trial.markers) * scale
    finite = np.isfinite(trial.markers).all(axis=-1)
    np.testing.assert_allclose(stored[finite], expected[finite], atol=tolerance_m * scale)
    assert np.isnan(stored[3, 1]).all()  # a missing marker reads back as NaN (all three coordinates)
    assert np.isfinite(stored[~np.isnan(trial.markers).any(-1)]).all()
    _, _, back, _ = read_trc(path, to_world_metres=True)
    np.testing.assert_allclose(back[finite], trial.markers[finite], atol=tolerance_m)


def test_trc_rejects_bad_shapes_and_units(tmp_path, trial):
    with pytest.raises(ValueError, match=r"markers: expected shape \(T=45, J=4, 3\)"):
        write_trc(tmp_path / "x.trc", trial.times, trial.markers, trial.marker_names[:4])
    with pytest.raises(ValueError, match="units"):
        write_trc(tmp_path / "x.trc", trial.times, trial.markers, trial.marker_names, units="cm")
    with pytest.raises(ValueError, match="qpos: expected shape"):
        write_mot(tmp_path / "x.mot", trial.times, trial.qpos[:, :5], trial.joint_names)


def test_csv_exports(tmp_path, trial):
    angles = joint_angles_frame(trial.times, trial.qpos, trial.joint_names)
    assert list(angles.columns[:4]) == ["time_s", "pelvis_tx_m", "pelvis_ty_m", "pelvis_tz_m"]
    np.testing.assert_allclose(angles["knee_angle_r_deg"], np.degrees(trial.qpos[:, 7]))
    path = write_markers_csv(tmp_path / "m.csv", trial.times, trial.markers, trial.marker_names)
    table = pd.read_csv(path)
    assert table.shape == (45, 1 + 3 * len(MARKERS))
    np.testing.assert_allclose(table["rhee_z_m"], trial.markers[:, 2, 2], rtol=1e-7)


def test_export_trials_writes_every_format(tmp_path, trial):
    from pipeline.c3d_export import read_c3d

    [written] = export_trials([trial], tmp_path / "out")
    assert set(written) == {"mot", "angles_csv", "trc", "c3d", "markers_csv"}
    for path in written.values():
        assert path.exists() and path.stat().st_size > 0
        assert path.name.startswith("S01_walk01")
    # C3D: our Z-up lab frame, float32 in mm -> within 1e-4 mm of the metres written; missing stays missing
    markers, labels, rate = read_c3d(written["c3d"])
    assert labels == MARKERS and rate == pytest.approx(30.0)
    finite = np.isfinite(trial.markers).all(axis=-1)
    np.testing.assert_allclose(markers[finite], trial.markers[finite], atol=1e-6)
    assert np.isnan(markers[3, 1]).all()
    # joint angles only (no markers) still gives .mot + csv
    [angles_only] = export_trials([TrialExport("a", trial.times, trial.qpos, JOINTS)], tmp_path / "out2")
    assert set(angles_only) == {"mot", "angles_csv"}


def test_parse_restrictions():
    assert parse_restrictions(["subject_id=S01", "seed=3", "gc=0.5"]) == {"subject_id": "S01", "seed": 3, "gc": 0.5}
    with pytest.raises(ValueError, match="ATTR=VALUE"):
        parse_restrictions(["oops"])


# ------------------------------------------------------------------------------------------ database layer
@pytest.fixture(scope="module")
def stored_fit(database):
    """One fit of the default model (MOVI87) with random scales/offsets, inserted directly (no fitting):
    subject of 62 kg, one static trial of 10 frames."""
    from compute.params import PARAMETER_SETS

    acq, model, fitting = (database.schemas[m] for m in ("acquisition", "model", "fitting"))
    base_model = model.ensure_default_model()
    sites = model.marker_sites(base_model, "MOVI87")
    groups = (model.BaseModel & {"base_model": base_model}).fetch1("scale_group_names")
    fitting.FitParams.insert_params("test_export", PARAMETER_SETS["cpu_default"].replace(steps=2), "tests")
    session = dict(subject_id="X01", session_id="2024-03-01")
    acq.Subject.insert1(dict(subject_id="X01", population="control", mass_kg=62.0))
    acq.Session.insert1(session)
    acq.Trial.insert1(dict(session, trial_name="static01", activity="static", keypoint_set="MOVI87", fps=30.0,
                           n_frames=10, keypoints_file="kp", keypoints_format="npz"))
    rng = np.random.default_rng(3)
    key = dict(session, base_model=base_model, params_name="test_export")
    fitting.FitTask.insert1(key)
    log_scale, offsets = rng.normal(0, 0.05, len(groups)), rng.normal(0, 0.01, (len(sites.marker_names), 3))
    fitting.BilevelFit.insert1(dict(
        key, keypoint_set="MOVI87", log_scale=log_scale, scale_group_names=list(groups), offsets=offsets,
        final_loss=0.0, final_losses={}, gc5=1.0, gc_curve=np.ones(20), iterations=0, stop_reason="test",
        wall_time_s=0.0, seed=0, loss_history=np.zeros((0, 1)), loss_history_columns=["total"],
        code_version="test", package_versions={}, compute_host="test"), allow_direct_insert=True)
    joint_names = ["pelvis_tx", "pelvis_ty", "pelvis_tz", "knee_angle_r"]
    fitting.BilevelFit.Trial.insert1(dict(
        key, trial_name="static01", times=np.arange(10) / 30.0, joint_names=joint_names,
        qpos=rng.normal(0, 0.1, (10, len(joint_names))),
        markers=rng.normal(0, 0.5, (10, len(sites.marker_names), 3)) + [0, 0, 1.0], network_weights=b"",
        network_config={}, gc5=1.0, gc_curve=np.ones(20), final_loss=0.0), allow_direct_insert=True)
    return dict(key=key, log_scale=log_scale, offsets=offsets, sites=sites)


@pytest.mark.db
def test_export_fits_writes_the_fit_model_and_c3d(database, stored_fit, tmp_path):
    import xml.etree.ElementTree as ET

    from compute.kinematics import load_body_model
    from pipeline.c3d_export import read_c3d
    from pipeline.exporters import export_fits
    from pipeline.opensim_model import scaled_marker_locations

    [written] = export_fits(database, {"subject_id": "X01"}, tmp_path)
    assert set(written) == {"mot", "angles_csv", "trc", "c3d", "markers_csv", "osim"}
    assert written["osim"].name == "X01_2024-03-01_body40_test_export.osim"
    root = ET.parse(written["osim"]).getroot()
    markers = root.findall(".//MarkerSet/objects/Marker")
    assert [m.get("name") for m in markers] == list(stored_fit["sites"].marker_names)
    # the subject's 62 kg is distributed over the segments
    masses = [float(b.findtext("mass")) for b in root.findall(".//BodySet/objects/Body")]
    assert sum(masses) == pytest.approx(62.0, rel=1e-3)
    # markers sit at s_body * site + offset with the stored scales and offsets
    body = load_body_model("MOVI87")
    expected = scaled_marker_locations(body, stored_fit["log_scale"], stored_fit["offsets"])
    first = np.array([float(v) for v in markers[0].findtext("location").split()])
    assert np.linalg.norm(first) == pytest.approx(np.linalg.norm(expected[0]), abs=1e-6)
    c3d_markers, labels, rate = read_c3d(written["c3d"])
    assert c3d_markers.shape == (10, len(labels), 3) and rate == pytest.approx(30.0)


@pytest.mark.db
def test_mmc_export_command_writes_osim_and_c3d(db_prefix, stored_fit, tmp_path, capsys):
    from pipeline import cli

    assert cli.main(["--prefix", db_prefix, "export", "--restrict", "subject_id=X01", str(tmp_path)]) == 0
    assert (tmp_path / "X01_2024-03-01_body40_test_export.osim").exists()
    assert (tmp_path / "X01_2024-03-01_static01_body40_test_export.c3d").exists()
    assert "exported 1 trial(s)" in capsys.readouterr().out
    assert cli.main(["--prefix", db_prefix, "export", "--no-osim", "--restrict", "subject_id=X01",
                     str(tmp_path / "no_model")]) == 0
    assert not list((tmp_path / "no_model").glob("*.osim"))

"""C3D export of virtual markers: values, labels, rate, units and missing markers survive a round trip,
read back by ezc3d and, when installed, by the independent pure-Python ``c3d`` package."""
from __future__ import annotations

import ezc3d
import numpy as np
import pytest

from pipeline.c3d_export import read_c3d, write_c3d

NAMES = ("lhee", "ltoe", "rhee", "rtoe", "pelv", "RightShoulderBack")
RATE_HZ = 60.0
# points are stored as 32-bit floats: ~0.1 um resolution at 2 m
TOLERANCE_M = 1e-6


@pytest.fixture
def markers() -> np.ndarray:
    rng = np.random.default_rng(11)
    markers = rng.uniform(-1.0, 2.0, (25, len(NAMES), 3))
    markers[3, 1] = np.nan       # missing in one frame
    markers[7, 4, 2] = np.nan    # one NaN coordinate makes the whole point missing
    markers[:, 5] = np.nan       # never seen
    return markers


def expected_missing(markers: np.ndarray) -> np.ndarray:
    return ~np.all(np.isfinite(markers), axis=2)


@pytest.mark.parametrize("units", ["mm", "m"])
def test_c3d_round_trip_with_ezc3d(tmp_path, markers, units):
    path = write_c3d(tmp_path / "walk.c3d", markers, NAMES, RATE_HZ, units=units)
    values, labels, rate = read_c3d(path)
    assert labels == NAMES
    assert rate == RATE_HZ
    missing = expected_missing(markers)
    np.testing.assert_array_equal(np.isnan(values).any(axis=2), missing)
    np.testing.assert_allclose(values[~missing], markers[~missing], atol=TOLERANCE_M)

    raw = ezc3d.c3d(str(path))
    point = raw["parameters"]["POINT"]
    assert list(point["UNITS"]["value"]) == [units]
    assert int(raw["parameters"]["ANALOG"]["USED"]["value"][0]) == 0
    assert raw["data"]["analogs"].size == 0
    residuals = raw["data"]["meta_points"]["residuals"][0].T  # (T, J)
    np.testing.assert_array_equal(residuals < 0, missing)
    np.testing.assert_array_equal(residuals[missing], -1.0)


def test_c3d_descriptions_and_bad_input(tmp_path, markers):
    landmarks = [f"landmark {n}" for n in NAMES]
    path = write_c3d(tmp_path / "walk.c3d", markers, NAMES, RATE_HZ, descriptions=landmarks)
    assert [d.strip() for d in ezc3d.c3d(str(path))["parameters"]["POINT"]["DESCRIPTIONS"]["value"]] == landmarks
    with pytest.raises(ValueError, match="units"):
        write_c3d(tmp_path / "bad.c3d", markers, NAMES, RATE_HZ, units="cm")
    with pytest.raises(ValueError, match="markers"):
        write_c3d(tmp_path / "bad.c3d", markers[:, :2], NAMES, RATE_HZ)


@pytest.mark.filterwarnings("ignore:No analog data found in file")
def test_c3d_readable_by_the_c3d_package(tmp_path, markers):
    c3d = pytest.importorskip("c3d", reason="the independent reader check needs the 'c3d' package")
    path = write_c3d(tmp_path / "walk.c3d", markers, NAMES, RATE_HZ)
    missing = expected_missing(markers)
    with open(path, "rb") as handle:
        reader = c3d.Reader(handle)
        assert reader.point_rate == RATE_HZ
        assert tuple(str(label).strip() for label in reader.point_labels) == NAMES
        assert reader.get("POINT:UNITS").string_value.strip() == "mm"
        frames = [points for _, points, _ in reader.read_frames()]
    data = np.stack(frames)  # (T, J, 5): x, y, z, residual, camera mask
    assert data.shape[:2] == markers.shape[:2]
    np.testing.assert_array_equal(data[..., 3] == -1, missing)
    np.testing.assert_allclose(data[..., :3][~missing] / 1000.0, markers[~missing], atol=TOLERANCE_M)

"""Normative gait waveforms and the smooth phase functions the motion generator is built from.

Stride phase is in cycles, 0 = heel strike of that leg. Angles are anatomical degrees: flexion, adduction and
dorsiflexion positive (``compute.synthetic.conventions`` maps them onto the model's joint signs).

Sagittal hip, knee and ankle curves are adult means read every 5 % of the stride starting at heel strike
(Winter, *Biomechanics and Motor Control of Human Movement*, 2009; Perry & Burnfield, *Gait Analysis*, 2010);
the coronal hip curve comes from the same sources. Each is fitted once, at import, with a 6-harmonic Fourier
series so it is smooth and periodic.
"""
from __future__ import annotations

import numpy as np


_NORMATIVE_DEG = {
    "hip_flexion": [30, 30, 28, 25, 20, 15, 10, 5, 0, -5, -10, -8, -2, 5, 13, 20, 26, 30, 32, 31],
    "knee_flexion": [5, 12, 17, 19, 17, 13, 9, 6, 5, 7, 12, 22, 36, 50, 60, 60, 52, 38, 20, 8],
    "ankle_dorsiflexion": [0, -4, -6, -2, 2, 5, 7, 9, 10, 10, 6, -2, -12, -17, -12, -5, -1, 1, 1, 0],
    "hip_adduction": [2, 5, 7, 7, 6, 5, 4, 3, 2, 1, 0, -2, -4, -5, -5, -4, -2, -1, 0, 1],
}
_N_HARMONICS = 6


def _fit_fourier(values_deg: list[float], n_harmonics: int = _N_HARMONICS) -> np.ndarray:
    """Least-squares Fourier coefficients (2H+1,) [a0, a1, b1, ...] of a periodic curve sampled evenly."""
    phase = np.arange(len(values_deg)) / len(values_deg)
    return np.linalg.lstsq(_fourier_basis(phase, n_harmonics), np.asarray(values_deg, float), rcond=None)[0]


def _fourier_basis(phase: np.ndarray, n_harmonics: int = _N_HARMONICS) -> np.ndarray:
    """(N,) stride phase in cycles -> (N, 2H+1) basis [1, cos 2πkφ, sin 2πkφ]."""
    cols = [np.ones_like(phase)]
    for k in range(1, n_harmonics + 1):
        cols += [np.cos(2 * np.pi * k * phase), np.sin(2 * np.pi * k * phase)]
    return np.stack(cols, axis=-1)


_FOURIER = {name: _fit_fourier(values) for name, values in _NORMATIVE_DEG.items()}


def gait_waveform(name: str, phase: np.ndarray) -> np.ndarray:
    """Normative joint angle (degrees) at stride phase (cycles, 0 = heel strike of that leg).

    name: 'hip_flexion' | 'knee_flexion' | 'ankle_dorsiflexion' | 'hip_adduction'. phase: (N,) -> (N,).
    """
    return _fourier_basis(np.mod(np.asarray(phase, float), 1.0)) @ _FOURIER[name]


def swing_window(phase: np.ndarray, start: float = 0.6) -> np.ndarray:
    """Smooth bump (0..1) over the swing part ``[start, 1)`` of the stride, 0 in stance."""
    p = np.mod(phase, 1.0)
    inside = p >= start
    return np.where(inside, np.sin(np.pi * (p - start) / (1.0 - start)) ** 2, 0.0)


_PITCH_PHASE = np.array([0.0, 0.04, 0.08, 0.35, 0.45, 0.55, 0.62])
_PITCH_DEG = np.array([12.0, 6.0, 0.0, 0.0, -12.0, -35.0, -55.0])


def foot_pitch_deg(phase: np.ndarray) -> np.ndarray:
    """Foot pitch in stance (toe up positive, degrees): heel rocker, foot flat 8-35 %, heel rise to toe-off."""
    p = np.mod(phase, 1.0)
    return np.where(p > 0.8, _PITCH_DEG[0], np.interp(p, _PITCH_PHASE, _PITCH_DEG))


def stance_weight(phase: np.ndarray) -> np.ndarray:
    """1 in stance [0, 0.6], smooth 0 in mid swing [0.68, 0.94]."""
    p = np.mod(phase, 1.0)
    down = 1.0 - smoothstep((p - 0.6) / 0.08)
    up = smoothstep((p - 0.94) / 0.06)
    return np.where(p < 0.8, down, up)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """Cubic ease ``3x² - 2x³`` of x clipped to [0, 1]: 0 below 0, 1 above 1, zero slope at both ends."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)

"""File importers: calibration (anipose, Caliscope), 2D keypoints (OpenPose JSON, Caliscope CSV, NPZ), walkway CSV.

Every reader is pure (files in, numpy out) and raises :class:`IngestError` with a one-line message
``<file>: <field>: <what was expected>`` on bad input. Nothing here touches the database.
"""
from pipeline.importers.errors import IngestError

__all__ = ["IngestError"]

"""``mmc report``: the paper's Table I and Table II, GC_5 and spatiotemporal comparisons, and the report figures.

* :mod:`pipeline.report.stats` — the numbers (σ_IQR, Table I/II, the primary condition, the spatiotemporal
  table, comparisons with subjects as the unit of replication), pure functions over DataFrames;
* :mod:`pipeline.report.figures` — matplotlib figures (GC_d curves, step-error histograms, joint-angle
  waveforms, reprojection overlays);
* :mod:`pipeline.report.builder` — reads the database, calls the two above, writes Markdown/CSV/figures.
"""
from __future__ import annotations

import argparse

from pipeline.report.builder import (Report, ReportRestriction, add_report_arguments, build_report,
                                     fetch_report_frames, make_report, markdown_table, print_report,
                                     report_command, write_report)
from pipeline.report.stats import (ConditionComparison, compare_conditions, population_comparisons, sigma_iqr,
                                   spatiotemporal_table, table_one, table_two)

__all__ = ["ConditionComparison", "Report", "ReportRestriction", "build_report", "compare_conditions",
           "fetch_report_frames", "make_report", "markdown_table", "population_comparisons", "print_report",
           "register_commands", "sigma_iqr", "spatiotemporal_table", "table_one", "table_two", "write_report"]


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """``mmc report``."""
    parser = subparsers.add_parser("report", help="figures and tables for a session or population",
                                   description="Tables I/II, spatiotemporal parameters by population, "
                                               "comparisons with subjects as the unit, figures")
    add_report_arguments(parser)
    parser.set_defaults(handler=report_command)

"""The report of a verification: kept for the names it held (the results model is
:mod:`bpttcheck.properties.results`: one ``Report``, ``CheckResult``, ``environment``)."""

from __future__ import annotations

from ..report_text import format_table
from ..results import FAILING, Report, environment

__all__ = ["FAILING", "Report", "environment", "format_table"]

"""docs/calibration.md is what sim.calibration_report writes from the shipped posterior."""

from __future__ import annotations

from pathlib import Path

from sim import calibration_report

PAGE = Path(__file__).resolve().parents[1] / "docs" / "calibration.md"


def test_the_committed_calibration_page_is_current():
    assert PAGE.read_text() == calibration_report.page(), (
        "docs/calibration.md is stale: python -m sim.calibration_report > docs/calibration.md")


def test_the_page_reads_its_numbers_from_the_posterior():
    doc = calibration_report.read()
    doc["headline"]["shipped"]["expected_median"] = 123456.0
    assert "123,456" in calibration_report.page(doc)

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


def test_the_tail_family_item_reads_the_pareto_accounts_evidence_or_says_it_is_absent():
    doc = calibration_report.read()
    doc["evidence"].pop("c2p", None)
    assert "has no evidence for it" in calibration_report.page(doc)
    doc["evidence"]["c2p"] = {**doc["evidence"]["c2"], "logz": doc["evidence"]["c2"]["logz"] - 0.5,
                              "weight": 0.3125, "label": "as c2, with a Pareto tail"}
    doc["diagnostics"]["c2p"], doc["headline"]["c2p"] = doc["diagnostics"]["c2"], doc["headline"]["c2"]
    doc["tail_shape"] = {"c2p": {"median": 0.0987, "q2.5": 0.0412, "q97.5": 0.1398}}
    text = calibration_report.page(doc)
    assert "-0.5 nats), weight 0.312" in text and "tail_shape 0.0987 (0.0412–0.14)" in text
    assert "test_replay_agrees_with_the_calibrations_closed_form_per_period" in text
    assert "Not done" not in text


def test_the_slope_figure_is_drawn_from_the_posterior_and_named_on_the_page(tmp_path):
    path = calibration_report.slope_figure(tmp_path / "slope.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert f"figures/{calibration_report.SLOPE_FIGURE}" in calibration_report.page()
    assert (PAGE.parent / "figures" / calibration_report.SLOPE_FIGURE).is_file()

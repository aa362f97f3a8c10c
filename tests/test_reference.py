"""docs/reference.md is current: every setting and every metric described, the page regenerated."""

from __future__ import annotations

from pathlib import Path

from sim import reference
from sim.replicate import COUNT_METRICS, PROGRAMME_METRICS, RATE_METRICS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def test_every_setting_of_the_schema_is_described():
    paths = set(reference.settings_paths())
    assert sorted(paths - set(reference.SETTINGS)) == []
    assert sorted(set(reference.SETTINGS) - paths - {"sweep.parameters"}) == []


def test_every_metric_is_in_the_glossary():
    metrics = {*COUNT_METRICS, *RATE_METRICS, *PROGRAMME_METRICS}
    assert sorted(metrics ^ set(reference.METRICS)) == []


def test_the_page_is_current():
    assert PAGE.read_text() == reference.render(), \
        "docs/reference.md is stale: python -m sim.reference > docs/reference.md"


def test_the_page_gives_ranges_and_defaults():
    text = reference.render()
    assert "| `watchlist.size` | integer | > 0, <= 100,000,000 | required |" in text
    assert "| `matcher.threshold` | number | >= 0, <= 1 | 0.64 |" in text

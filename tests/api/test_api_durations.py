"""ISO-8601 durations as DeliverySpec uses them."""

from __future__ import annotations

import pytest

from wisp.api.durations import parse_iso8601_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT0.3S", 0.3),
        ("PT600S", 600.0),
        ("PT10M", 600.0),
        ("PT1H30M", 5400.0),
        ("P1D", 86400.0),
        ("P1DT2H", 93600.0),
        ("P2W", 14 * 86400.0),
        ("PT0,5S", 0.5),
        ("pt2s", 2.0),
        ("-PT1S", -1.0),
    ],
)
def test_parses(text: str, seconds: float) -> None:
    assert parse_iso8601_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "P", "PT", "1S", "PT1", "PT1S2M", "P1H", "10s", "PTS", "P1DT"])
def test_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso8601_duration(text)

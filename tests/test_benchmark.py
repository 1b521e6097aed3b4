"""make benchmark's cases run for every recipe and report what they timed."""
from __future__ import annotations

import pytest

from lib.train.benchmark import run_case


@pytest.mark.parametrize("recipe", ["thesis", "fast"])
def test_benchmark_case_runs_each_recipe(recipe):
    result = run_case("tiny", "ae", "cpu", iterations=2, threads=1, recipe=recipe)
    assert result["recipe"] == recipe and result["iterations"] == 2
    assert result["seconds_per_iteration"] > 0 and result["peak_rss_mb"] > 0
    assert result["g_total"] == result["g_total"]  # finite losses: not NaN

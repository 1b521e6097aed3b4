"""make benchmark's cases run for every recipe and report what they timed."""
from __future__ import annotations

from pathlib import Path

import pytest

from lib.train.benchmark import run_case


@pytest.mark.parametrize("recipe", ["thesis", "fast"])
def test_benchmark_case_runs_each_recipe(recipe):
    result = run_case("tiny", "ae", "cpu", iterations=2, threads=1, recipe=recipe)
    assert result["recipe"] == recipe and result["iterations"] == 2
    assert result["seconds_per_iteration"] > 0 and result["peak_rss_mb"] > 0
    assert result["g_total"] == result["g_total"]  # finite losses: not NaN
    # fast reads its inputs through the input neutraliser, trained before the GAN: its step is timed too
    assert ("neutraliser_seconds_per_step" in result) == (recipe == "fast")
    assert result.get("neutraliser_seconds_per_step", 1) > 0


def test_recipe_ablation_switches_each_fast_technique_off_in_turn():
    import importlib.util

    from lib.train.recipes import RECIPES

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "recipe_ablation.py"
    spec = importlib.util.spec_from_file_location("recipe_ablation", path)
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    runs = ablation.configurations({})
    fast, thesis = RECIPES["fast"], RECIPES["thesis"]
    techniques = [name for name in fast if fast[name] != thesis[name]]
    assert list(runs) == ["fast"] + [f"no-{name}" for name in techniques] and runs["fast"] == {}
    # switching an option off also switches off the options that need it
    assert runs["no-composite"]["composite"] == "off" and runs["no-composite"]["landmark_flow_weight"] == 0.0
    assert runs["no-paired_target"] == {"paired_target": "other-take", "landmark_flow_weight": 0.0,
                                        "feature_matching_weight": 0.0}
    with_base = ablation.configurations({"category_ramp": True, "emotion_directions": True})
    assert "no-category_ramp" in with_base and with_base["no-ema_beta"]["category_ramp"] is True
    assert ablation.parse_base(["clip_start=first", "category_weight=10"]) == {"clip_start": "first",
                                                                              "category_weight": 10}

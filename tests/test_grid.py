"""Every variant of every grid is a valid set of 03_train parameters."""
from __future__ import annotations

import pytest

from lib.config import ConfigError
from lib.constants import PRESET_NAMES
from lib.paths import notebooks_dir
from lib.runs.notebooks import notebook_parameters
from lib.runs.grid import CELL_PARAMETERS, GRID_NAMES, resolve_grid, select_variants
from lib.train.systems import SYSTEM_NAMES
from lib.train.reenact import REENACT_LOSSES


def notebook_03_parameters() -> dict | None:
    """Names and default values of 03_train's `parameters` cell, or None while it does not exist."""
    path = notebooks_dir() / "03_train.ipynb"
    return notebook_parameters(path) if path.exists() else None


def test_grid_parameter_names_match_the_03_notebook():
    declared = notebook_03_parameters()
    assert declared == CELL_PARAMETERS, "03_train's parameters cell is not lib.train.options.parameters_cell()"
    assert len(declared) <= 20  # the options every system shares, the run location and the display


def test_run_location_is_a_notebook_parameter_not_an_option():
    import dataclasses

    from lib.train.options import RUN_LOCATION_PARAMETERS, options_class

    for system in SYSTEM_NAMES:
        assert not set(RUN_LOCATION_PARAMETERS) & {f.name for f in dataclasses.fields(options_class(system))}
    assert {"run_name": None, "run_dir": None}.items() <= notebook_03_parameters().items()


@pytest.mark.parametrize("preset", PRESET_NAMES)
@pytest.mark.parametrize("grid", GRID_NAMES)
def test_every_variant_resolves_to_valid_03_parameters(grid, preset):
    from lib.train.options import make_config, system_options

    variants = resolve_grid(grid, preset)
    assert variants and len({v.name for v in variants}) == len(variants)
    for variant in variants:
        params = variant.params
        assert params["preset"] == preset and "run_dir" not in params
        takes = set(CELL_PARAMETERS) | set(system_options(params.get("system") or "vicegan"))
        assert set(params) <= takes, f"{variant.name}: {sorted(set(params) - takes)}"
        make_config(**params)  # every type, choice and combination checked (ConfigError otherwise)


def test_grid_contents_follow_the_papers():
    thesis = {v.name: v.params for v in resolve_grid("thesis", "small")}
    assert len(thesis) == 8
    assert thesis["thesis-m1-seen"] == {"encoder": "ae", "content_mode": "all", "finetune": True,
                                             "composition": "seen", "preset": "small"}
    assert thesis["thesis-m4-unseen"]["content_mode"] == "single" and thesis["thesis-m4-unseen"]["finetune"] is False
    facenet = {v.name: v.params for v in resolve_grid("facenet", "small")}
    assert [(p["encoder"], p["consistency_loss"], p["consistency_scale"]) for p in facenet.values()] == [
        ("ae", "mse", None), ("facenet", "mse", 10000.0), ("facenet", "mse", 15000.0), ("facenet", "cosine", 2000.0)]
    ablation = {v.name: v.params for v in resolve_grid("ablation", "small")}
    full = ablation.pop("ablation-full")
    for params in ablation.values():  # each drops exactly one loss group
        changed = {k: v for k, v in params.items() if full.get(k) != v}
        assert len(changed) == 1 and list(changed.values()) == [0.0]
    assert [v.params["encoder"] for v in resolve_grid("baseline", "tiny")] == ["none"]
    papers = resolve_grid("papers", "small")
    assert [v.name for v in papers] == list(thesis) + ["baseline-mocogan"] + list(facenet)[1:]
    assert {v.name: v.aliases for v in papers if v.aliases} == {"thesis-m2-seen": ("facenet-m1-ae-mse",)}
    assert [v.name for v in resolve_grid("demo", "small")] == ["thesis-m4-seen", "thesis-m4-unseen",
                                                               "baseline-templates-seen", "baseline-templates-unseen",
                                                               "baseline-mocogan", "baseline-latent-walk",
                                                               "baseline-landmark-warp"]
    baselines = {v.name: v.params for v in resolve_grid("baselines", "small")}
    assert list(baselines) == ["baseline-mocogan", "baseline-templates-seen", "baseline-templates-unseen",
                               "baseline-latent-walk", "baseline-landmark-warp", "baseline-fevgan",
                               "baseline-fevgan-no-identity", "baseline-fevgan-no-spatial", "baseline-reenact",
                               "baseline-reenact-no-pixel", "baseline-reenact-no-consistency",
                               "baseline-reenact-no-feature", "baseline-latent-walk-residual", "baseline-reenact-warp"]
    assert [p.get("fevgan_encoders") for p in baselines.values()][:8] == [None] * 5 + ["both", "spatial", "identity"]
    assert [p.get("reenact_losses") for p in baselines.values()][8:12] == list(REENACT_LOSSES)
    everything = resolve_grid("all", "paper")
    merged = {v.name: v.aliases for v in everything if v.aliases}
    assert merged == {"thesis-m2-seen": ("facenet-m1-ae-mse", "ablation-full")}
    assert len(everything) == 8 + 1 + 2 + 3 + 4 + 4 + 4 + 2 + 1  # ... MoCoGAN, the templates prior (2), ..., the warp


def test_bad_names_fail_listing_the_choices():
    with pytest.raises(ConfigError, match="valid choices: 'thesis', 'facenet'"):
        resolve_grid("thesys", "small")
    with pytest.raises(ConfigError, match="'tiny', 'small', 'paper'"):
        resolve_grid("thesis", "full")
    with pytest.raises(ConfigError, match="no system has the 03_train parameters \\[.stepz.\\]"):
        resolve_grid("thesis", "tiny", overrides={"stepz": 3})
    with pytest.raises(ConfigError, match="'mse', 'cosine'"):
        resolve_grid("thesis", "tiny", overrides={"consistency_loss": "l1"})
    variants = resolve_grid("all", "tiny")
    with pytest.raises(ConfigError, match="thesis-m1-seen"):
        select_variants(variants, ["thesis-m9-seen"])
    assert [v.name for v in select_variants(variants, ["ablation-full"])] == ["thesis-m2-seen"]
    assert resolve_grid("thesis", "tiny", overrides={"steps": 3})[0].params["steps"] == 3


def test_seeds_expand_each_variant_once_per_seed_and_evaluation_groups_them_back():
    import numpy as np
    import pandas as pd

    from lib.evaluation.evaluate import aggregate_over_seeds

    plain = resolve_grid("papers", "tiny")
    seeded = resolve_grid("papers", "tiny", seeds="0,1,2")
    assert len(seeded) == 3 * len(plain)
    assert [v.name for v in seeded[:3]] == [f"{plain[0].name}-seed{s}" for s in (0, 1, 2)]
    assert [v.params["seed"] for v in seeded[:3]] == [0, 1, 2]
    assert {k: v for k, v in seeded[1].params.items() if k != "seed"} == plain[0].params
    # a variant's plain name (or an alias) picks all its seeds
    assert [v.name for v in select_variants(seeded, ["thesis-m4-seen"])] == [f"thesis-m4-seen-seed{s}" for s in (0, 1, 2)]
    assert len(select_variants(seeded, ["facenet-m1-ae-mse"])) == 3
    assert [v.name for v in select_variants(seeded, ["thesis-m4-seen-seed1"])] == ["thesis-m4-seen-seed1"]
    for bad in ("0,0", "-1", "a,b", []):
        with pytest.raises(ConfigError, match="seeds="):
            resolve_grid("demo", "tiny", seeds=bad)
    with pytest.raises(ConfigError, match="not both"):
        resolve_grid("demo", "tiny", overrides={"seed": 3}, seeds=[0, 1])

    table = pd.DataFrame({"run": ["real", "m-seed0", "m-seed1", "m-seed2", "solo"], "ssim": [np.nan, 0.5, 0.6, 0.7, 0.1]})
    by_variant = aggregate_over_seeds(table)
    assert by_variant["run"].tolist() == ["m"] and by_variant["n_seeds"].tolist() == [3]
    half = 4.302653 * 0.1 / np.sqrt(3)  # t(0.975, 2 dof) x sd / sqrt(n)
    assert by_variant["ssim"].item() == pytest.approx(0.6)
    assert by_variant["ssim_lo"].item() == pytest.approx(0.6 - half, abs=1e-6)
    assert aggregate_over_seeds(table[table["run"] == "solo"]) is None

"""Time VICE-GAN training iterations: ``python -m lib.train.benchmark`` (``make benchmark``).

For each device (CPU, and CUDA when present), preset (paper, small), content encoder
(ae, facenet) and training recipe (thesis, fast) it runs a few full iterations (D_I, D_V
and G steps) on random data - no cache or trained weights needed, the networks are randomly
initialised at the preset's sizes - and reports seconds per iteration and peak memory; for a recipe with
``neutralise_input``, also the seconds per training step of the input neutraliser (trained before the GAN).  Each case runs in its own
process so that peak memory belongs to that case alone (CPU: peak resident set size from
``resource.getrusage``; CUDA: ``torch.cuda.max_memory_allocated``).  Results go to a JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from lib.io import atomic_write_json
from lib.models.encoders import AutoencoderContent, FaceNetContent, build_facenet_network
from lib.models.neutraliser import InputNeutraliser
from lib.train.options import PRESETS, make_config
from lib.train.recipes import RECIPE_NAMES

DEFAULT_ITERATIONS = {("paper", "cpu"): 2, ("small", "cpu"): 8, ("paper", "cuda"): 10, ("small", "cuda"): 20}
AUTOENCODER_FOR_PRESET = {"tiny": ("sae-large", 0.25), "small": ("sae-large", 0.5), "paper": ("sae-large", 1.0)}


class RandomBatches:
    """Stands in for ClipSampler: clips drawn from a fixed pool of random ones (as training draws from its fixed
    training videos) and random frames, in [-1, 1], with random labels."""

    def __init__(self, video_length: int, image_size: int, seed: int = 0, pool: int = 32):
        self.video_length, self.image_size = video_length, image_size
        self.generator = torch.Generator().manual_seed(seed)
        self.pool = torch.rand(pool, 3, video_length, image_size, image_size, generator=self.generator) * 2 - 1

    def clips(self, n: int):
        picks = torch.randint(0, len(self.pool), (n,), generator=self.generator)
        return self.pool[picks], torch.randint(0, 6, (n,), generator=self.generator), None

    def images(self, n: int) -> torch.Tensor:
        return torch.rand(n, 3, self.image_size, self.image_size, generator=self.generator) * 2 - 1


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def time_neutraliser_steps(device: torch.device, iterations: int) -> float:
    """Seconds per training step of ``neutralise_input``'s network at its settings, random frames and targets."""
    from lib.train.neutraliser import NeutraliserSettings

    settings = NeutraliserSettings()
    model = InputNeutraliser(settings.width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    frames = torch.rand(2, settings.batch_size, 3, 64, 64, device=device) * 2 - 1
    for step in range(iterations + 1):  # the first is the warm-up
        if step == 1:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
        loss = (model(frames[0]) - frames[1]).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / iterations


def run_case(preset: str, encoder: str, device: str, iterations: int, threads: int | None = None,
             recipe: str = "thesis", compile_generator: bool = False) -> dict[str, Any]:
    """Time ``iterations`` training iterations (after one warm-up) of one preset/encoder/recipe on one device.

    The recipe's options act as in training (spectral norm, EMA update, lazy R1 every ``r1_every``
    steps, DiffAugment, a warm-started decoder of the autoencoder's shape); the paired L1 needs real
    partner clips and is left out, which leaves out one subtraction per step."""
    from lib.models.autoencoders import build_autoencoder
    from lib.train.gan import (GANModels, build_networks, compile_decoder, make_optimizers, template_grids, train_step,
                               uses_neutraliser)

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    cfg = make_config(preset=preset, encoder=encoder, device=device, recipe=recipe, reconstruction_weight=0.0)
    cfg = dataclasses.replace(cfg, image_size=64)
    rss_before = _peak_rss_mb()
    name, width = AUTOENCODER_FOR_PRESET[preset]
    autoencoder = build_autoencoder(name, 50, 64, width)
    if encoder == "ae":
        content = AutoencoderContent(autoencoder, finetune=False).to(dev)
    else:
        content = FaceNetContent(build_facenet_network(None), finetune=False, input_size=cfg.facenet_input_size).to(dev)
    neutraliser = InputNeutraliser().to(dev).eval().requires_grad_(False) if uses_neutraliser(cfg) else None
    models = GANModels(**build_networks(cfg, content.code_dim, dev, autoencoder), encoder=content,
                       neutraliser=neutraliser)
    if compile_generator:
        compile_decoder(models.generator)
    optimizers = make_optimizers(models, cfg)
    batches = RandomBatches(cfg.video_length, 64)
    noise = torch.Generator(device=dev).manual_seed(1)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    warm_up = time.perf_counter()
    train_step(models, optimizers, batches, cfg, noise, dev, step=1)  # warm-up (allocations, kernel choice, compile)
    template_grids(models, batches.pool)  # aligned templates: each input's grid is made once, then looked up
    warm_up = time.perf_counter() - warm_up
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    started = time.perf_counter()
    for step in range(iterations):
        log = train_step(models, optimizers, batches, cfg, noise, dev, step=step)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = (time.perf_counter() - started) / iterations
    result = {"preset": preset, "encoder": encoder, "recipe": recipe, "compile_generator": compile_generator,
              "warm_up_seconds": round(warm_up, 2), "device": device, "iterations": iterations,
              "threads": torch.get_num_threads(), "seconds_per_iteration": round(seconds, 4),
              "video_batch": cfg.video_batch, "image_batch": cfg.image_batch, "width": cfg.width,
              "facenet_input_size": cfg.facenet_input_size if encoder == "facenet" else None,
              "consistency_frames": cfg.consistency_frames, "peak_rss_mb": round(_peak_rss_mb(), 1),
              "rss_before_models_mb": round(rss_before, 1), "g_total": log["g_total"]}
    if neutraliser is not None:  # trained once per composition before the GAN (cached): its own step time
        result["neutraliser_seconds_per_step"] = round(time_neutraliser_steps(dev, iterations), 4)
    if dev.type == "cuda":
        result["cuda_max_memory_allocated_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
        result["gpu"] = torch.cuda.get_device_name(dev)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "small"], choices=list(PRESETS))
    parser.add_argument("--encoders", nargs="+", default=["ae", "facenet"], choices=["ae", "facenet", "none"])
    parser.add_argument("--recipes", nargs="+", default=["thesis", "fast"], choices=list(RECIPE_NAMES))
    parser.add_argument("--devices", nargs="+", default=None, choices=["cpu", "cuda"],
                        help="default: cpu, plus cuda when torch sees a GPU")
    parser.add_argument("--iterations", type=int, default=None, help="timed iterations per case (default per preset)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--compile", nargs="+", default=["off"], choices=["off", "on"],
                        help="also time with the generator's decoder compiled (on), e.g. --compile off on")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default papermill_runs/benchmark/benchmark.json)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_case(args.presets[0], args.encoders[0], args.devices[0], args.iterations, args.threads,
                                  args.recipes[0], args.compile[0] == "on")))
        return {}
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    results = []
    for device in devices:
        for preset in args.presets:
            for encoder, recipe, compiled in ((e, r, c) for e in args.encoders for r in args.recipes
                                              for c in args.compile):
                iterations = args.iterations or DEFAULT_ITERATIONS.get((preset, device), 3)
                command = [sys.executable, "-m", "lib.train.benchmark", "--one", "--presets", preset, "--encoders",
                           encoder, "--devices", device, "--iterations", str(iterations), "--recipes", recipe,
                           "--compile", compiled]
                if args.threads:
                    command += ["--threads", str(args.threads)]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    result = {"preset": preset, "encoder": encoder, "recipe": recipe, "device": device,
                              "error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
                else:
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                results.append(result)
                memory = (f"{result['cuda_max_memory_allocated_mb']} MB CUDA" if "cuda_max_memory_allocated_mb" in result
                          else f"{result.get('peak_rss_mb')} MB peak RSS")
                neutraliser = (f"; input neutraliser {result['neutraliser_seconds_per_step']:.3f} s/step"
                               if "neutraliser_seconds_per_step" in result else "")
                print(f"{device:4s} {preset:5s} {encoder:7s} {recipe:6s} compile={compiled:3s} " + (
                    f"{result['seconds_per_iteration']:.3f} s/iteration, {memory} "
                    f"(batches {result['video_batch']}/{result['image_batch']}, {result['threads']} threads){neutraliser}"
                    if "error" not in result else f"FAILED: {result['error']}"), flush=True)
    from lib.paths import runs_dir

    out = args.out or runs_dir() / "benchmark" / "benchmark.json"
    summary = {"torch": torch.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "results": results}
    atomic_write_json(out, summary)
    print(f"wrote {out}")
    return summary


if __name__ == "__main__":
    main()

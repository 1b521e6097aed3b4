"""What a generator that never moves scores: the ceilings and floors of the learning probes.

Scores, with 03's learning probe (05's measures on held-out pairs of test subjects), two static
"generators" that repeat one frame 16 times:

- ``copy``: the input's first frame itself (identity ceiling of any generator; emotion and
  motion at their floor);
- ``ae:<checkpoint>``: that frame reconstructed by an autoencoder: the identity a frozen
  autoencoder content code can carry at best (every ``encoder="ae"`` variant starts from it).

    .venv/bin/python benchmarks/static_ceilings.py --preset small --pairs 48 copy ae:selected ae:selected-seen

``ae:selected`` / ``ae:selected-seen`` are 02's selections of the unseen / seen composition.
Prints one JSON line per generator and writes them to papermill_runs/benchmarks/static_ceilings-<preset>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.evaluation.learning_probes import build_learning_probe  # noqa: E402
from lib.io import atomic_write_json  # noqa: E402
from lib.models.encoders import load_autoencoder_network  # noqa: E402
from lib.paths import runs_dir  # noqa: E402
from lib.train.autoencoders import find_selected_autoencoder  # noqa: E402
from lib.train.options import make_config, resolve_config  # noqa: E402


class StaticGenerator:
    """The input's first frame (optionally through an autoencoder), repeated for ``length`` frames."""

    def __init__(self, autoencoder: torch.nn.Module | None = None, length: int = 16):
        self.autoencoder, self.length = autoencoder, length

    @torch.no_grad()
    def generate(self, inputs, labels, seed: int = 0) -> torch.Tensor:
        first = torch.as_tensor(inputs)[:, :, 0].float()
        if self.autoencoder is not None:
            first = self.autoencoder.decode(self.autoencoder.encode(first)).clamp(-1, 1)
        return first[:, :, None].expand(-1, -1, self.length, -1, -1).contiguous()


def build(spec: str, preset: str) -> StaticGenerator:
    if spec == "copy":
        return StaticGenerator()
    if not spec.startswith("ae:"):
        raise SystemExit(f"unknown generator {spec!r}; use copy, ae:selected, ae:selected-seen or ae:<checkpoint.pt>")
    source = spec[3:]
    if source in ("selected", "selected-seen"):
        source = find_selected_autoencoder(preset, composition="seen" if source.endswith("seen") else "unseen")
    return StaticGenerator(load_autoencoder_network(source).eval())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("generators", nargs="+")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--pairs", type=int, default=48)
    args = parser.parse_args()
    generators = {spec: build(spec, args.preset) for spec in args.generators}  # bad names fail before work
    cfg = resolve_config(make_config(preset=args.preset, encoder="none", probe_pairs=args.pairs))
    probe = build_learning_probe(cfg)
    results = {}
    for spec, generator in generators.items():
        results[spec] = {k: round(v, 4) for k, v in probe(generator).items()}
        print(spec, json.dumps(results[spec]), flush=True)
    atomic_write_json(runs_dir() / "benchmarks" / f"static_ceilings-{args.preset}.json", results)


if __name__ == "__main__":
    main()

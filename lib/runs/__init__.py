"""Experiment sweeps: named variants (grid), the resumable papermill runner (submitit jobs, local or Slurm), the one-command demo."""
from lib.runs.grid import GRID_NAMES, Variant, resolve_grid, select_variants
from lib.runs.runner import SweepResult, run_evaluation_notebook, grid_dir, grid_status, run_grid, run_variants

__all__ = ["GRID_NAMES", "Variant", "resolve_grid", "select_variants", "SweepResult", "run_evaluation_notebook",
           "grid_dir", "grid_status", "run_grid", "run_variants"]

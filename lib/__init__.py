"""VICE-GAN research library: data, models, training, evaluation and run management.

Imports run one way: ``data <- models <- training <- evaluation <- runs``; the
numbered notebooks import from all of them, nothing here imports a notebook.
"""
from lib.constants import EMOTIONS, MUG_EMOTION_FOLDERS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "MUG_EMOTION_FOLDERS", "__version__"]

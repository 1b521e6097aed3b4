"""Data: the MUG reader, the synthetic MUG-like benchmark, face cropping + cache, splits, clips.

Submodules are imported explicitly (``from lib.data.cache import load_cache``) so
that importing ``lib.data`` stays cheap and free of torch/cv2.

- ``mug``        scan a MUG-layout tree, read frames and the synthetic ground truth
- ``detectors``  face detectors by name (mtcnn, haar, center, none)
- ``preprocess`` crop + resize + cache building (``build_cache``)
- ``cache``      ``VideoCache`` and ``load_cache``
- ``splits``     subject-level split and the seen/unseen compositions
- ``clips``      clip sampling and torch datasets
- ``locate``     find the cache of a preset; ``prepare_dataset`` (all of notebook 01)
"""

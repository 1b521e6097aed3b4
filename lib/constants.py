"""Names shared by every stage."""

# The six target emotions, in the index order used by every label tensor and classifier.
EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
EMOTION_TO_INDEX: dict[str, int] = {name: i for i, name in enumerate(EMOTIONS)}

# MUG's seven emotion folders; `neutral` is read but kept apart from the six.
NEUTRAL = "neutral"
MUG_EMOTION_FOLDERS: tuple[str, ...] = EMOTIONS[:4] + (NEUTRAL,) + EMOTIONS[4:]

# Frames per generated video, the stride between a clip's frames in its take, and the side length (SPEC).
VIDEO_LENGTH = 16
CLIP_STRIDE = 2
IMAGE_SIZE = 64

# Model-scale presets; each stage keeps its own numbers for these names.
PRESET_NAMES: tuple[str, ...] = ("tiny", "small", "paper")
# Which synthetic benchmark preset each model preset uses when no real data is given.
SYNTHETIC_FOR_PRESET: dict[str, str] = {"tiny": "tiny", "small": "small", "paper": "full"}

# The learning issue's motion bar: generated ACD between 0.5x and 2x the real videos' (probes, figures).
ACD_RATIO_RANGE: tuple[float, float] = (0.5, 2.0)

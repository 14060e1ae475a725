"""The FER2013 label set and image geometry, as training shows and reads them: the order and the crop side are the
pipeline's own (classpulse_core), so the model's output index i is what the services call EMOTIONS[i]."""

from classpulse_core.labels import EMOTIONS as EMOTION_KEYS
from classpulse_core.schemas import CROP_SIDE

EMOTIONS = tuple(key.capitalize() for key in EMOTION_KEYS)
"""The same emotions, in the same order, capitalised for plots, model cards and reports."""
NUM_CLASSES = len(EMOTIONS)
IMAGE_SIDE = CROP_SIDE
PIXELS_PER_IMAGE = IMAGE_SIDE * IMAGE_SIDE

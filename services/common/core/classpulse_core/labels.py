"""The emotions of FER2013, in its label order: index i of a probability vector is EMOTIONS[i]."""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

LABELS_SIGNATURE = "emotion_labels"
"""The exported model's signature that names its outputs: no inputs, output LABELS_OUTPUT (string [7], EMOTIONS as
the model numbers them). TF Serving's metadata carries no values, so the classifier asks it with Predict."""
LABELS_OUTPUT = "labels"

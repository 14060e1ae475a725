"""Local stand-in for TensorFlow Serving: a small gRPC server speaking TF Serving's own protos.

The TF Serving binary cannot be installed on the development machines, so the local stack runs this instead (compose
and Kubernetes run the real tensorflow/serving image). It implements what ClassPulse uses, the way TF Serving does it:
PredictionService.Predict and GetModelMetadata, ModelService.GetModelStatus and HandleReloadConfigRequest; integer
version directories under the base path, the highest one served (or those a model config file's version policy
names, with its version labels) and new ones picked up by polling; signature-checked inputs with TF Serving's status
codes; warm-up requests replayed before a version is AVAILABLE.

    python -m classpulse_devstack.tfserving_standin --port 8500 --model-name emotion --model-base-path models/emotion
    python -m classpulse_devstack.tfserving_standin --port 8500 --model-config-file models.config \
        --model-config-file-poll-wait-seconds 5 --allow-version-labels-for-unavailable-models
"""

MIXED_PRECISION_MODES = ("off", "bfloat16", "auto")
"""`--mixed-precision`: TF Serving's `--mixed_precision=bfloat16` (off by default there too), and "auto", the
stand-in's own: bfloat16 where this CPU multiplies it natively and at least 1.2 times faster than float32 (the rule
training's precision "auto" follows, `classpulse_training.hardware.resolve_precision`). Here, not in the servable
module, so that the command line knows it without loading TensorFlow."""


def computes_bfloat16(mode: str) -> bool:
    """Whether a server started with `--mixed-precision mode` on this machine computes a float32 model in bfloat16."""
    if mode not in MIXED_PRECISION_MODES:
        raise ValueError(f"mixed precision must be one of {MIXED_PRECISION_MODES}, got {mode!r}")
    if mode == "auto":
        from classpulse_training.hardware import resolve_precision

        return resolve_precision("auto") == "mixed_bfloat16"
    return mode == "bfloat16"

"""TF Serving warm-up records: <version>/assets.extra/tf_serving_warmup_requests.

TF Serving replays these PredictRequests when it loads the model, so the first real batch does not pay
for graph initialisation. One request per typical batch size of the classifier service, for each signature it may
call: a signature's graph is prepared on its own first run, warming another leaves it cold.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from .labels import IMAGE_SIDE
from .serving import INPUT_KEY, SERVING_SIGNATURE, SINGLE_PASS_SIGNATURE

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MODEL_NAME = "emotion"
WARMUP_BATCH_SIZES = (1, 8, 32, 64, 128, 256)
"""The classifier's call sizes: it splits a batch into equal calls of at most CLASSPULSE_MAX_BATCH_FACES (256), two
or more once a batch has 64 faces (CLASSPULSE_CONCURRENT_CALLS, 2, each of 32 faces or more), so a busy class sends
128 to 256 faces a call and a quiet one a few; TF Serving's batching joins calls up to max_batch_size, 256 too. A
shape's first run prepares its kernels and buffers: a size left cold pays that within its first call's deadline."""
WARMUP_SIGNATURES = (SINGLE_PASS_SIGNATURE, SERVING_SIGNATURE)
"""The classifier's choices of CLASSPULSE_MODEL_SIGNATURE: its default, and flip averaging."""


def warmup_request(batch_size: int, signature_name: str) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.model_spec.signature_name = signature_name
    # Mid-grey faces: the content is irrelevant, only shapes and dtypes matter for warm-up. One value for the whole
    # shape, TensorProto's short form (TF Serving fills the rest with the last value, as TensorFlow does): a few
    # bytes a request where its pixels would be 2,304 a face, so the file stays small with 256-face calls warmed.
    faces = tf.make_tensor_proto(128, dtype=tf.uint8, shape=[batch_size, IMAGE_SIDE, IMAGE_SIDE, 1])
    request.inputs[INPUT_KEY].CopyFrom(faces)
    return request


def write_warmup_requests(model_dir: Path, batch_sizes: tuple[int, ...] = WARMUP_BATCH_SIZES) -> Path:
    path = model_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature_name in WARMUP_SIGNATURES:
            for batch_size in batch_sizes:
                entry = prediction_log_pb2.PredictLog(request=warmup_request(batch_size, signature_name))
                writer.write(prediction_log_pb2.PredictionLog(predict_log=entry).SerializeToString())
    return path


def read_warmup_requests(model_dir: Path) -> list[predict_pb2.PredictRequest]:
    requests = []
    for record in tf.data.TFRecordDataset(str(model_dir / WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests

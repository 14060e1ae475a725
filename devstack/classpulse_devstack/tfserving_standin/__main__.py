"""`python -m classpulse_devstack.tfserving_standin`: the local stand-in for TensorFlow Serving's model server.

Flags follow tensorflow_model_server's (--port, --model_name, --model_base_path or --model_config_file,
--file_system_poll_wait_seconds, --tensorflow_intra_op_parallelism, ...), spelled with dashes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from classpulse_core.logs import configure_logging
from classpulse_devstack.tfserving_standin import MIXED_PRECISION_MODES


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    cores = len(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(
        prog="python -m classpulse_devstack.tfserving_standin", description="Local stand-in for TensorFlow Serving."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (default %(default)s)")
    parser.add_argument("--model-name")
    parser.add_argument("--model-base-path", type=Path, help="folder of integer version folders")
    parser.add_argument(
        "--model-config-file",
        type=Path,
        help="TF Serving's model config (text ModelServerConfig of one model: versions, labels), instead of "
        "--model-name and --model-base-path",
    )
    parser.add_argument(
        "--model-config-file-poll-wait-seconds",
        type=float,
        default=0.0,
        help="how often to read the model config file again, to apply what changed (default 0: never)",
    )
    parser.add_argument(
        "--allow-version-labels-for-unavailable-models",
        action="store_true",
        help="a label that is new, or keeps its version, may name a version not loaded yet (as at start)",
    )
    parser.add_argument("--monitoring-port", type=int, help="serve Prometheus metrics on this port (default: off)")
    parser.add_argument(
        "--file-system-poll-wait-seconds", type=float, default=2.0, help="how often to look for new versions"
    )
    parser.add_argument(
        "--max-num-load-retries", type=int, default=5, help="retries of a new version that fails to load"
    )
    parser.add_argument(
        "--grpc-max-threads", type=int, default=2 * cores, help="RPCs answered at once (default: 2 per core)"
    )
    # TensorFlow reads the same environment variables itself when no flag sets the pools.
    parser.add_argument(
        "--tensorflow-intra-op-parallelism",
        type=int,
        default=_env_int("TF_NUM_INTRAOP_THREADS", cores),
        help="threads one op may use (default: $TF_NUM_INTRAOP_THREADS, else one per core)",
    )
    parser.add_argument(
        "--tensorflow-inter-op-parallelism",
        type=int,
        default=_env_int("TF_NUM_INTEROP_THREADS", cores),
        help="ops run at once, across requests (default: $TF_NUM_INTEROP_THREADS, else one per core)",
    )
    parser.add_argument(
        "--shutdown-grace-seconds", type=float, default=10.0, help="time in-flight RPCs get after SIGTERM"
    )
    parser.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISION_MODES,
        default="off",
        help="bfloat16: float32 models compute in bfloat16 (TF Serving's --mixed_precision=bfloat16); auto: only where "
        "this CPU runs bfloat16 at least 1.2x faster than float32 (default %(default)s)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    # As tensorflow_model_server: one source of models, a config file or a name and base path.
    by_name = args.model_name is not None or args.model_base_path is not None
    if args.model_config_file is not None and by_name:
        parser.error("--model-config-file names the model and its base path: no --model-name, --model-base-path")
    if args.model_config_file is None and (args.model_name is None or args.model_base_path is None):
        parser.error("give --model-name and --model-base-path, or --model-config-file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    configure_logging("tfserving-standin", args.log_level)
    # Imported only now so that --help and flag errors answer at once: the server module loads TensorFlow (seconds).
    from classpulse_devstack.tfserving_standin.server import StandinOptions, run

    return run(
        StandinOptions(
            host=args.host,
            port=args.port,
            model_name=args.model_name,
            model_base_path=args.model_base_path and args.model_base_path.resolve(),
            model_config_file=args.model_config_file and args.model_config_file.resolve(),
            model_config_poll_wait_s=args.model_config_file_poll_wait_seconds,
            allow_labels_for_unavailable=args.allow_version_labels_for_unavailable_models,
            monitoring_port=args.monitoring_port,
            poll_wait_s=args.file_system_poll_wait_seconds,
            max_load_attempts=1 + args.max_num_load_retries,
            grpc_max_threads=args.grpc_max_threads,
            intra_op_threads=args.tensorflow_intra_op_parallelism,
            inter_op_threads=args.tensorflow_inter_op_parallelism,
            shutdown_grace_s=args.shutdown_grace_seconds,
            mixed_precision=args.mixed_precision,
        )
    )


if __name__ == "__main__":
    sys.exit(main())

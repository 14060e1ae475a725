"""Which versions of the model are served, the labels naming them, and the state of every version seen.

Mirrors TF Serving's file-system storage path source with its availability-preserving policy: every integer directory
name under the base path is a version, and the model config's version policy picks those to serve (without a config
file: the highest). A poller looks every few seconds; a wanted version is loaded and warmed up while the served ones
keep answering, and a version no longer wanted is unloaded only once a wanted one serves. A version that fails to load
leaves the others serving and is retried on later polls.

Labels (the config's version_labels) are checked as TF Serving's ServerCore checks them whenever a config is applied,
before that config's versions load: a label must name a version AVAILABLE at that moment, except, with
--allow-version-labels-for-unavailable-models, a label that is new or keeps its version. A config refused leaves the
one before it in force. A request's label resolves to its version when the request comes: a label whose version is
not loaded is NOT_FOUND, as a version asked for by number.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

import grpc
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from classpulse_devstack.tfserving_standin.errors import ServingError
from classpulse_devstack.tfserving_standin.metrics import SERVED_VERSION
from classpulse_devstack.tfserving_standin.model_config import ModelConfig, read_model_config
from classpulse_devstack.tfserving_standin.servable import Servable

log = logging.getLogger(__name__)

State = get_model_status_pb2.ModelVersionStatus.State


def version_dirs(base_path: Path) -> dict[int, Path]:
    """{version: directory} for the integer-named directories under `base_path`; other names are not versions."""
    return {int(path.name): path for path in base_path.iterdir() if path.is_dir() and path.name.isdigit()}


class ModelManager:
    def __init__(self, config: ModelConfig, max_load_attempts: int, allow_labels_for_unavailable: bool = False) -> None:
        # The config, labels and servables are each replaced as a whole (atomic in Python): a request reads them
        # without a lock, and one that resolved a servable finishes on it even if that version is unloaded meanwhile.
        self._config = config
        self._labels: Mapping[str, int] = {}
        self._serving: Mapping[int, Servable] = {}
        self._allow_labels_for_unavailable = allow_labels_for_unavailable
        self._max_load_attempts = max_load_attempts
        self._failed_loads: Counter[int] = Counter()
        # A state change stores a new message, so the ones handed out by version_statuses() never change.
        self._statuses: dict[int, get_model_status_pb2.ModelVersionStatus] = {}
        self._statuses_lock = threading.Lock()
        # One change at a time: a poll's loads and unloads, or a config applied.
        self._changing = threading.Lock()
        self._stop_polling = threading.Event()
        self._pollers: list[threading.Thread] = []

    @property
    def model_name(self) -> str:
        return self._config.name

    @property
    def serving_version(self) -> int | None:
        """The version a request that names none gets: the highest served."""
        return max(self._serving, default=None)

    def resolve(self, model_spec: model_pb2.ModelSpec) -> Servable:
        """The servable a request's ModelSpec asks for, or TF Serving's error for a label, model or version not served."""
        choice = model_spec.WhichOneof("version_choice")
        serving = self._serving if model_spec.name == self.model_name else {}
        if choice == "version_label":
            labels = self._labels if model_spec.name == self.model_name else {}
            if model_spec.version_label not in labels:
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"Unrecognized servable version label: {model_spec.version_label}"
                )
            wanted = labels[model_spec.version_label]
        else:
            wanted = model_spec.version.value if choice == "version" else max(serving, default=-1)
        servable = serving.get(wanted)
        if servable is None:
            request = f"Latest({model_spec.name})" if choice is None else f"Specific({model_spec.name}, {wanted})"
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}")
        return servable

    def version_statuses(self) -> dict[int, get_model_status_pb2.ModelVersionStatus]:
        with self._statuses_lock:
            return dict(self._statuses)

    def apply_config(self, config: ModelConfig) -> None:
        """Makes `config` the one in force, its labels at once and its versions from the next poll; ServingError
        with TF Serving's code when it is refused (a label on a version not AVAILABLE, another model)."""
        with self._changing:
            if config.name != self.model_name:
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"the TF Serving stand-in serves model {self.model_name}; serving {config.name} takes a restart",
                )
            for label, version in config.labels.items():
                label_keeps_its_version = self._labels.get(label, version) == version
                if version not in self._serving and not (
                    self._allow_labels_for_unavailable and label_keeps_its_version
                ):
                    raise ServingError(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"Request to assign label to version {version} of model {config.name}, which is not currently "
                        "available for inference",
                    )
            self._config = config
            self._labels = dict(config.labels)
        log.info("model config applied", extra=self._log_fields(labels=dict(config.labels)))

    def reload_config(self, config: ModelConfig) -> None:
        """apply_config, then the versions it asks for loaded and those it no longer wants unloaded."""
        self.apply_config(config)
        self.poll_once()

    def reload_config_file(self, path: Path) -> None:
        """reload_config of the file at `path` when it says something new; a config refused is logged, and the one
        before it stays in force (the file is read again on the next poll)."""
        try:
            config = read_model_config(path)
            if config != self._config:
                self.reload_config(config)
        except ServingError as error:
            log.error(
                "model config refused, the one before it stays in force",
                extra=self._log_fields(config_file=str(path), code=error.code.name, error=error.message),
            )

    def load_first_version(self, stop: threading.Event, poll_wait_s: float) -> bool:
        """Blocks until the config's versions are served (True), or until `stop` is set or a first load fails (False).

        TF Serving, too, opens its ports only once the models are loaded, and exits if one cannot be.
        """
        while not stop.is_set():
            self.poll_once()
            if self._failed_loads:
                return False
            if self._serving:
                return True
            stop.wait(poll_wait_s)
        return False

    def start_polling(self, poll_wait_s: float, config_file: Path | None = None, config_poll_wait_s: float = 0) -> None:
        """Polls the base path every `poll_wait_s`, and the config file every `config_poll_wait_s` (0: never)."""
        pollers: list[tuple[str, float, Callable[[], None]]] = [("file-system-poller", poll_wait_s, self.poll_once)]
        if config_file is not None and config_poll_wait_s > 0:
            pollers.append(("model-config-poller", config_poll_wait_s, lambda: self.reload_config_file(config_file)))
        for name, wait_s, action in pollers:
            poller = threading.Thread(target=self._repeat, args=(wait_s, action), name=name, daemon=True)
            poller.start()
            self._pollers.append(poller)

    def stop_polling(self, timeout_s: float) -> None:
        self._stop_polling.set()
        for poller in self._pollers:
            poller.join(timeout_s)

    def _repeat(self, wait_s: float, action: Callable[[], None]) -> None:
        while not self._stop_polling.wait(wait_s):
            action()

    def poll_once(self) -> None:
        """Loads the wanted versions under the base path not served yet (unless they failed every attempt), then
        unloads those no longer wanted, once a wanted one serves."""
        with self._changing:
            config = self._config
            try:
                versions = version_dirs(config.base_path)
            except OSError as error:
                log.warning("cannot list the model base path", extra=self._log_fields(error=str(error)))
                return
            if not versions:
                log.warning("No versions of servable found under base path", extra=self._log_fields())
                return
            wanted = config.wanted(versions)
            for version in sorted(wanted - self._serving.keys()):
                if self._failed_loads[version] < self._max_load_attempts:
                    self._load(version, versions[version])
            if wanted & self._serving.keys():
                for version in sorted(self._serving.keys() - wanted):
                    self._unload(version)

    def _load(self, version: int, export_dir: Path) -> None:
        fields = self._log_fields(version=version, path=str(export_dir))
        self._set_state(version, State.LOADING)
        log.info("Loading servable version", extra=fields)
        started = time.monotonic()
        try:
            servable = Servable(self.model_name, version, export_dir)
            warmup_requests = servable.replay_warmup_requests()
        except Exception as error:  # whatever is wrong with an export must not take the server down
            self._failed_loads[version] += 1
            self._set_state(version, State.END, error=f"{type(error).__name__}: {error}")
            log.error(
                "Loading servable version failed",
                extra={**fields, "attempt": self._failed_loads[version], "max_attempts": self._max_load_attempts},
                exc_info=True,
            )
            return
        self._serving = {**self._serving, version: servable}
        self._set_state(version, State.AVAILABLE)
        SERVED_VERSION.labels(self.model_name).set(max(self._serving))
        log.info(
            "Successfully loaded servable version",
            extra={**fields, "warmup_requests": warmup_requests, "load_s": round(time.monotonic() - started, 2)},
        )

    def _unload(self, version: int) -> None:
        # Its Python objects go once the last request holding them has finished.
        self._serving = {served: servable for served, servable in self._serving.items() if served != version}
        self._set_state(version, State.END)
        SERVED_VERSION.labels(self.model_name).set(max(self._serving))
        log.info("Unloaded servable version", extra=self._log_fields(version=version))

    def _set_state(self, version: int, state: int, error: str = "") -> None:
        status = get_model_status_pb2.ModelVersionStatus(version=version, state=state)
        if error:
            status.status.error_code = error_codes_pb2.UNKNOWN
            status.status.error_message = error
        with self._statuses_lock:
            self._statuses[version] = status

    def _log_fields(self, **fields: object) -> dict[str, object]:
        return {"model": self.model_name, "base_path": str(self._config.base_path), **fields}

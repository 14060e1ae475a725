from __future__ import annotations

from pydantic import Field

from classpulse_aggregator.alerts import DEFAULT_RULES, AlertRule
from classpulse_core.settings import StorageSettings


class AggregatorSettings(StorageSettings):
    http_port: int = Field(8004, description="CLASSPULSE_HTTP_PORT")
    dedup_window_s: int = Field(
        6 * 3600, ge=60, description="CLASSPULSE_DEDUP_WINDOW_S: how long a frame is remembered to ignore redelivery"
    )
    alert_rules: list[AlertRule] = Field(
        list(DEFAULT_RULES), description="CLASSPULSE_ALERT_RULES: JSON list of {index, direction, threshold, for_s}"
    )
    alert_window_s: int = Field(10, ge=1, le=600, description="CLASSPULSE_ALERT_WINDOW_S: window an index is computed on")
    # Long enough that a pause in a lesson (a video shown with the cameras off) is still the lesson: its presence alert
    # stays up; short enough that the next lesson of the day starts with no alert of the last one's.
    alert_idle_s: int = Field(
        300, ge=1, description="CLASSPULSE_ALERT_IDLE_S: seconds without a frame after which a class's active alerts "
        "end (value null) and its alert rules start afresh",
    )

"""Contains all the data models used in inputs/outputs"""

from .alert_event import AlertEvent
from .api_key import ApiKey
from .api_key_camera_kind_type_0 import ApiKeyCameraKindType0
from .class_create import ClassCreate
from .class_out import ClassOut
from .class_summary import ClassSummary
from .class_timeseries import ClassTimeseries
from .class_update import ClassUpdate
from .context import Context
from .emotion_shares import EmotionShares
from .http_validation_error import HTTPValidationError
from .key_create import KeyCreate
from .key_created import KeyCreated
from .live_window import LiveWindow
from .page_alert_event import PageAlertEvent
from .page_class_out import PageClassOut
from .page_session import PageSession
from .peak import Peak
from .phase_summary import PhaseSummary
from .read_coverage import ReadCoverage
from .response_healthz import ResponseHealthz
from .role import Role
from .series_point import SeriesPoint
from .session import Session
from .session_start import SessionStart
from .validation_error import ValidationError

__all__ = (
    "AlertEvent",
    "ApiKey",
    "ApiKeyCameraKindType0",
    "ClassCreate",
    "ClassOut",
    "ClassSummary",
    "ClassTimeseries",
    "ClassUpdate",
    "Context",
    "EmotionShares",
    "HTTPValidationError",
    "KeyCreate",
    "KeyCreated",
    "LiveWindow",
    "PageAlertEvent",
    "PageClassOut",
    "PageSession",
    "Peak",
    "PhaseSummary",
    "ReadCoverage",
    "ResponseHealthz",
    "Role",
    "SeriesPoint",
    "Session",
    "SessionStart",
    "ValidationError",
)

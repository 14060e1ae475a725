"""Contains all the data models used in inputs/outputs"""

from .alert_event import AlertEvent
from .api_key import ApiKey
from .api_key_camera_kind_type_0 import ApiKeyCameraKindType0
from .attempt import Attempt
from .class_create import ClassCreate
from .class_out import ClassOut
from .class_summary import ClassSummary
from .class_timeseries import ClassTimeseries
from .class_update import ClassUpdate
from .context import Context
from .dead_letter import DeadLetter
from .embed_issuer_create import EmbedIssuerCreate
from .embed_issuer_create_algorithm import EmbedIssuerCreateAlgorithm
from .embed_issuer_out import EmbedIssuerOut
from .embed_issuer_out_algorithm import EmbedIssuerOutAlgorithm
from .emotion_shares import EmotionShares
from .http_validation_error import HTTPValidationError
from .key_create import KeyCreate
from .key_created import KeyCreated
from .list_dead_letters_response_200_item import ListDeadLettersResponse200Item
from .live_window import LiveWindow
from .lti_platform import LtiPlatform
from .lti_platform_keys_type_0 import LtiPlatformKeysType0
from .lti_platform_out import LtiPlatformOut
from .lti_platform_out_keys_type_0 import LtiPlatformOutKeysType0
from .message import Message
from .page_alert_event import PageAlertEvent
from .page_attempt import PageAttempt
from .page_class_out import PageClassOut
from .page_session import PageSession
from .peak import Peak
from .phase_summary import PhaseSummary
from .read_coverage import ReadCoverage
from .replayed import Replayed
from .response_healthz import ResponseHealthz
from .role import Role
from .series_point import SeriesPoint
from .session import Session
from .session_start import SessionStart
from .tool_key_out import ToolKeyOut
from .validation_error import ValidationError
from .viewer_session import ViewerSession
from .webhook import Webhook
from .webhook_create import WebhookCreate
from .webhook_created import WebhookCreated

__all__ = (
    "AlertEvent",
    "ApiKey",
    "ApiKeyCameraKindType0",
    "Attempt",
    "ClassCreate",
    "ClassOut",
    "ClassSummary",
    "ClassTimeseries",
    "ClassUpdate",
    "Context",
    "DeadLetter",
    "EmbedIssuerCreate",
    "EmbedIssuerCreateAlgorithm",
    "EmbedIssuerOut",
    "EmbedIssuerOutAlgorithm",
    "EmotionShares",
    "HTTPValidationError",
    "KeyCreate",
    "KeyCreated",
    "ListDeadLettersResponse200Item",
    "LiveWindow",
    "LtiPlatform",
    "LtiPlatformKeysType0",
    "LtiPlatformOut",
    "LtiPlatformOutKeysType0",
    "Message",
    "PageAlertEvent",
    "PageAttempt",
    "PageClassOut",
    "PageSession",
    "Peak",
    "PhaseSummary",
    "ReadCoverage",
    "Replayed",
    "ResponseHealthz",
    "Role",
    "SeriesPoint",
    "Session",
    "SessionStart",
    "ToolKeyOut",
    "ValidationError",
    "ViewerSession",
    "Webhook",
    "WebhookCreate",
    "WebhookCreated",
)

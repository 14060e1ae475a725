from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, HttpUrl, IPvAnyNetwork, SecretStr

from classpulse_api.embed import MAX_LIFETIME_S
from classpulse_core.settings import StorageSettings
from classpulse_core.share_correction import FILE_NAME

# Run from the repository (devstack, tests): the latest exported version, the one the local model server serves.
REPO_MODELS = Path(__file__).resolve().parents[3] / "models" / "emotion"


class ApiSettings(StorageSettings):
    http_port: int = Field(8000, description="CLASSPULSE_HTTP_PORT")
    max_request_bytes: int = Field(
        64 * 1024, ge=1024, description="CLASSPULSE_MAX_REQUEST_BYTES: larger request bodies are refused with 413"
    )
    max_points: int = Field(10_000, ge=10, description="CLASSPULSE_MAX_POINTS: most buckets one timeseries call returns")
    admin_api_key: SecretStr | None = Field(
        None, description="CLASSPULSE_ADMIN_API_KEY: a cpk_<id>_<secret> key installed as admin at start-up"
    )
    quantification_file: Path | None = Field(
        None,
        description=f"CLASSPULSE_QUANTIFICATION_FILE: the served model version's {FILE_NAME} (models/emotion/<v>/), what"
        " class shares are corrected with; default: the latest version's in the repository (the API image ships the"
        " stable version's and sets this)",
    )
    model_signature: str = Field(
        "emotion_single_pass",
        description="CLASSPULSE_MODEL_SIGNATURE: the signature the classifier calls (its setting of the same name),"
        " whose errors are corrected",
    )

    embed_audience: str = Field(
        "classpulse", min_length=1,
        description="CLASSPULSE_EMBED_AUDIENCE: the `aud` a platform's viewer token must carry (docs/integrations.md)",
    )
    embed_token_max_lifetime_s: int = Field(
        MAX_LIFETIME_S, ge=30, le=MAX_LIFETIME_S,
        description="CLASSPULSE_EMBED_TOKEN_MAX_LIFETIME_S: the longest a viewer token may live (exp - iat), 15 min at most",
    )

    integrations_worker: bool = Field(
        True,
        description="CLASSPULSE_INTEGRATIONS_WORKER: this process sends webhooks and xAPI statements (classpulse_api."
        "dispatcher; replicas share the work)",
    )
    webhook_allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="CLASSPULSE_WEBHOOK_ALLOWED_NETWORKS, JSON: the networks a webhook URL's host may resolve into, e.g."
        ' ["0.0.0.0/0"] for the internet; none by default (no webhook); the rules of camera sources'
        " (classpulse_web.destinations)",
    )
    webhook_allowed_schemes: list[Literal["http", "https"]] = Field(
        ["https"], min_length=1, description="CLASSPULSE_WEBHOOK_ALLOWED_SCHEMES, JSON"
    )
    webhook_timeout_s: float = Field(5.0, gt=0, le=60, description="CLASSPULSE_WEBHOOK_TIMEOUT_S: one attempt's limit")
    webhook_max_attempts: int = Field(
        8, ge=1, le=50, description="CLASSPULSE_WEBHOOK_MAX_ATTEMPTS before a message is dead-lettered (webhooks, xAPI)"
    )
    webhook_retry_initial_s: float = Field(
        5.0, gt=0, description="CLASSPULSE_WEBHOOK_RETRY_INITIAL_S: wait after a first failure, doubled after each"
    )
    webhook_retry_max_s: float = Field(900.0, gt=0, description="CLASSPULSE_WEBHOOK_RETRY_MAX_S: longest wait")

    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="CLASSPULSE_PUBLIC_URL: where platforms reach this API; names the classes in xAPI statements and"
        " the deployment in their ids",
    )
    lti_state_ttl_s: int = Field(
        600, ge=30, le=3600,
        description="CLASSPULSE_LTI_STATE_TTL_S: how long an LTI login's state and nonce wait for its launch (used once)",
    )
    lti_session_ttl_s: int = Field(
        4 * 3600, ge=300, le=24 * 3600,
        description="CLASSPULSE_LTI_SESSION_TTL_S: lifetime of the key an LTI launch opens a page with (an Instructor's"
        " dashboard, a Learner's student page); the next launch gives a new one",
    )
    student_page_url: str = Field(
        "http://127.0.0.1:8001",
        description="CLASSPULSE_STUDENT_PAGE_URL: where students reach ingest (its /student/<class> page); an LTI"
        " Learner's launch is sent there",
    )
    xapi_endpoint: HttpUrl | None = Field(
        None, description="CLASSPULSE_XAPI_ENDPOINT: the LRS's xAPI base URL (…/xAPI); unset: no xAPI export"
    )
    xapi_username: str = Field("", description="CLASSPULSE_XAPI_USERNAME: HTTP basic auth at the LRS")
    xapi_password: SecretStr = Field(SecretStr(""), description="CLASSPULSE_XAPI_PASSWORD: HTTP basic auth at the LRS")
    xapi_summary_interval_s: int = Field(
        300, ge=10, le=86_400, description="CLASSPULSE_XAPI_SUMMARY_INTERVAL_S: a running lesson's indices sent this often"
    )

    def quantification_path(self) -> Path:
        if self.quantification_file is not None:
            return self.quantification_file
        versions = sorted((p for p in REPO_MODELS.glob("*") if p.name.isdigit()), key=lambda p: int(p.name))
        if not versions:
            raise FileNotFoundError(f"no model version under {REPO_MODELS}: set CLASSPULSE_QUANTIFICATION_FILE")
        return versions[-1] / FILE_NAME

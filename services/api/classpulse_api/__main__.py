"""`python -m classpulse_api`: serve the REST API."""

from __future__ import annotations

import uvicorn

from classpulse_api.app import create_app
from classpulse_api.settings import ApiSettings
from classpulse_core.logs import configure_logging


def main() -> None:
    settings = ApiSettings()
    configure_logging("api", settings.log_level)
    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None, access_log=False, timeout_graceful_shutdown=10
    )


if __name__ == "__main__":
    main()

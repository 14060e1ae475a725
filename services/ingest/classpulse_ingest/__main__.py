"""`python -m classpulse_ingest [serve]`: the HTTP ingest service (posted frames, the student page, sources started
over HTTP); `python -m classpulse_ingest publish ...`: publish one source (video file, folder of images, webcam,
stream URL) and return when it ends."""

from __future__ import annotations

import argparse

import uvicorn

from classpulse_core.logs import configure_logging
from classpulse_ingest import publish
from classpulse_ingest.app import create_app
from classpulse_ingest.settings import IngestSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="classpulse_ingest")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the HTTP ingest service (default)")
    publish.add_arguments(commands.add_parser("publish", help="publish one video source and return when it ends"))
    args = parser.parse_args()
    settings = IngestSettings()
    configure_logging("ingest", settings.log_level)
    if args.command == "publish":
        publish.main(settings, args)
    else:
        uvicorn.run(
            create_app(settings),
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.requests_shutdown_s,
        )


if __name__ == "__main__":
    main()

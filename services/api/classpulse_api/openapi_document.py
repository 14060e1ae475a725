"""`python -m classpulse_api.openapi_document --out FILE`: the API's OpenAPI document, as the running API serves it at
/openapi.json, written without starting anything (no Redis needed): what the Python client is generated from
(`make client`), committed beside it so that a change of the API shows as a change of the document."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from classpulse_api.app import create_app
from classpulse_api.settings import ApiSettings


def openapi_document() -> dict[str, Any]:
    return create_app(ApiSettings()).openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classpulse_api.openapi_document", description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.write_text(render(openapi_document()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

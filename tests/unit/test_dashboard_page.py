"""The dashboard's files as the API serves them: strict security headers, right types, nothing outside its folder,
every file the page loads exists, and no inline script or style that the Content-Security-Policy would block."""

import re

import httpx
import pytest
from fastapi import FastAPI

from classpulse_api.routes import dashboard

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


@pytest.fixture
async def client():
    app = FastAPI()
    app.include_router(dashboard.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        yield http


async def test_page_is_served_with_security_headers(client):
    page = await client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("page", "loads"),
    [
        ("/dashboard", {"/dashboard/app.js", "/dashboard/style.css", "/dashboard/charts.js", "/dashboard/api.js"}),
        ("/dashboard/embed", {"/dashboard/embed.js", "/dashboard/style.css"}),
    ],
)
async def test_every_file_the_page_loads_is_served_with_its_type(client, page, loads):
    html = (await client.get(page)).text
    referenced = set(re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', html))
    scripts = {path for path in referenced if path.endswith(".js")}
    # Modules import their siblings: follow the imports too.
    pending = list(scripts)
    while pending:
        source = (await client.get(pending.pop())).text
        for name in re.findall(r'from "\./([\w.]+)"', source):
            if f"/dashboard/{name}" not in referenced:
                referenced.add(f"/dashboard/{name}")
                pending.append(f"/dashboard/{name}")
    assert loads <= referenced
    for path in referenced:
        response = await client.get(path)
        assert response.status_code == 200, path
        expected = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}[path.rsplit(".", 1)[1]]
        assert response.headers["content-type"].startswith(expected), path
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_nothing_outside_the_dashboard_folder_is_served(client):
    for path in ("/dashboard/..%2Fapp.py", "/dashboard/%2E%2E/routes/dashboard.py", "/dashboard/index.html.bak", "/dashboard/nope.js"):
        response = await client.get(path)
        assert response.status_code == 404, path


@pytest.mark.parametrize("html", [(dashboard.ASSETS_DIR / dashboard.PAGE).read_text(), dashboard.EMBED_OPENING_PAGE], ids=["dashboard", "embed"])
def test_page_has_no_inline_script_or_style(html):
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert re.findall(r"<[^>]*\s(?:style|on\w+)=", html) == [] and "<style" not in html

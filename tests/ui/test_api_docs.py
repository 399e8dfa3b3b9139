"""`/docs`: the API's documentation works without internet (assets served by this server) and is titled."""

from __future__ import annotations

import re

from nicegui.testing import User

from app import __version__


async def test_docs_page_loads_only_local_assets_that_answer(user: User) -> None:
    page = await user.http_client.get("/docs")
    assert page.status_code == 200, page.text
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    remote = [u for u in urls if u.startswith(("http:", "https:", "//"))]
    assert remote == [], f"/docs loads from the internet: {remote}"
    for url in urls:
        answer = await user.http_client.get(url)
        assert answer.status_code == 200, f"{url}: {answer.status_code}"


async def test_api_is_titled_autoloader_with_its_version(user: User) -> None:
    info = (await user.http_client.get("/openapi.json")).json()["info"]
    assert info["title"] == "Autoloader"
    assert info["version"] == __version__
    assert "/api/v1/ingestions" in (await user.http_client.get("/openapi.json")).json()["paths"]

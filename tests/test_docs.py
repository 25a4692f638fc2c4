"""The documentation site (mkdocs.yml, eval/docsite): the reference pages list everything the
code has — every setting, command, option and route, each derived here from the code itself —
the HTTP examples are a real server's answers, and `mkdocs build --strict` passes offline."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
from mkdocs.exceptions import PluginError
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from starlette.routing import Mount, Route

from api.app import create_app
from eval.docsite import examples as recorder
from eval.docsite import hooks, settings_page
from eval.harness import HOST, free_port
from rag.cli import main
from rag.config import Settings
from tests.seed_facts import ROOT

MKDOCS = Path(sys.executable).with_name("mkdocs")
METHODS = ("get", "post", "put", "patch", "delete")


def _app() -> Any:
    return create_app(Settings.model_construct())


def _operations() -> list[tuple[str, str]]:
    spec = _app().openapi()
    return [(m, p) for p, item in spec["paths"].items() for m in METHODS if m in item]


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Recorded against `rag serve` over a fresh index of the seeds; docs/api-examples.json is
    refreshed from them when they changed (as test_webui refreshes the screenshots)."""
    recorded = recorder.served(tmp_path_factory.mktemp("examples") / "index")
    recorder.write(recorded, recorder.OUT)
    return recorded


@pytest.fixture(scope="module")
def site(examples: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    built = subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(out)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-4000:]
    return out


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_every_route_has_an_example_a_real_server_answered(examples: list[dict[str, Any]]) -> None:
    shown = {e["route"] for e in examples}
    missing = [f"{m.upper()} {p}" for m, p in _operations() if f"{m.upper()} {p}" not in shown]
    assert not missing, f"add an example request for {missing} to eval/docsite/examples.py"
    # and each JSON answer is what OpenAPI says the route answers with that status
    spec = _app().openapi()
    for example in examples:
        method, path = example["route"].split()
        response = example["response"]
        if "json" not in response:
            continue
        declared = spec["paths"][path][method.lower()]["responses"][str(response["status"])]
        schema = declared["content"]["application/json"]["schema"]
        jsonschema.validate(response["json"], {**schema, "components": spec["components"]})
    upload = next(e for e in examples if e["route"] == "POST /v1/documents")
    assert upload["curl"].startswith("curl -s -F file=@") and upload["response"]["status"] == 201


def test_the_site_builds_strictly_and_loads_nothing_from_elsewhere(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert len(pages) > 10
    for page in pages:
        html = page.read_text()
        outside = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', html)
        assert not outside, f"{page.name} loads {outside}"
        assert "fonts.googleapis" not in html and "fonts.gstatic" not in html
    assert (site / "search" / "search_index.json").exists()  # the search runs on this file


def test_the_settings_page_lists_every_setting(site: Path) -> None:
    html = (site / "settings.html").read_text()
    prefix = Settings.model_config["env_prefix"]
    for name, field in Settings.model_fields.items():
        variable = f"{prefix}{name}".upper()
        assert f'id="{variable.lower()}"' in html and variable in html, variable
        if field.default is not None and not isinstance(field.default, (bool, list, Path)):
            row = re.search(rf'id="{variable.lower()}".*?</tr>', html, re.S)
            assert row and str(field.default) in _text(row[0]), variable


def _commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


def test_the_cli_page_lists_every_command_and_option(site: Path) -> None:
    html = (site / "cli.html").read_text()
    for path, command in _commands(main, "rag"):
        anchor = f'id="{path.replace(" ", "-")}"'
        assert anchor in html, path
        section = _text(html.split(anchor, 1)[1].split("<h2", 1)[0])
        for param in command.params:
            names = param.opts if isinstance(param, click.Option) else [param.human_readable_name]
            for name in names:
                assert name in section, f"{path} {name}"


def test_the_http_page_lists_every_route_model_and_example(site: Path,
                                                          examples: list[dict[str, Any]]) -> None:
    html = (site / "http-api.html").read_text()
    app = _app()
    for method, path in _operations():
        anchor = re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")
        assert f'id="{anchor}"' in html, f"{method} {path}"
    for name in app.openapi()["components"]["schemas"]:
        assert name.startswith("Body_") or f'id="schema-{name.lower()}"' in html, name
    for route in app.routes:  # the routes OpenAPI leaves out are listed too
        if isinstance(route, (Route, Mount)):
            assert route.path in html, route.path
    for example in examples:
        assert _text(example["title"]) in html, example["title"]


@pytest.mark.unit
def test_every_setting_has_a_description_and_values_come_from_the_code() -> None:
    entries = settings_page.entries(Settings)
    assert [e.name for e in entries] == list(Settings.model_fields)
    assert not [e.variable for e in entries if not e.description], \
        "write a comment above each setting in rag/config.py: it is the docs' description"
    upload = Settings.model_fields["max_upload_bytes"].default
    assert hooks.value("RAG_MAX_UPLOAD_BYTES") == f"`{upload}` ({upload // 2**20} MiB)"
    assert hooks.value("rag.config.MAX_K") == "50"
    assert ".pdf" in hooks.value("rag.documents.SUPPORTED_SUFFIXES")
    for gone in ("RAG_NO_SUCH_SETTING", "rag.config.NO_SUCH_CONSTANT"):
        with pytest.raises(PluginError):
            hooks.value(gone)


@pytest.mark.browser
def test_search_works_with_no_network_but_the_sites_own(site: Path) -> None:
    """The built site served by a plain local HTTP server: headless Chromium finds a page by
    a word in it (the search index and lunr are files of the site)."""
    served = ThreadingHTTPServer((HOST, free_port()),
                                 functools.partial(SimpleHTTPRequestHandler, directory=str(site)))
    threading.Thread(target=served.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(f"http://{HOST}:{served.server_address[1]}/index.html")
        driver.execute_script("document.getElementById('__search').checked = true")
        driver.find_element(By.CSS_SELECTOR, "input.md-search__input").send_keys("abstention")
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".md-search-result__item"))
        links = [a.get_attribute("href") or "" for a in
                 driver.find_elements(By.CSS_SELECTOR, ".md-search-result__item a")]
        assert any("answers.html" in link for link in links), links
    finally:
        driver.quit()
        served.shutdown()
        served.server_close()

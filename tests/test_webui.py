"""The web page (GET /) and the offline API docs, in a real browser: Debian's headless
Chromium driven by selenium through /usr/bin/chromedriver (nothing downloaded), against
`rag serve` processes on 127.0.0.1 over the seeds. `make test` installs the browser."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from eval.harness import HOST, RAG, free_port, serve_rag
from rag.documents import readable_suffixes
from tests.seed_facts import OFF_TOPIC, ROOT, SEED_A, SEED_B, SEED_QUESTIONS, SEEDS

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = ROOT / "docs" / "screenshots"
KEY = "webui-s3cret"
PREFIX = "/rag"
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
WAIT_S = 60
T = TypeVar("T")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds ingested once; each server gets its own copy."""
    root = tmp_path_factory.mktemp("webui") / "index"
    subprocess.run([RAG, "ingest", str(SEEDS)], env={**os.environ, "RAG_INDEX_DIR": str(root)},
                   check=True, capture_output=True, timeout=300)
    return root


def _serve(index: Path, name: str, **env: str) -> Iterator[str]:
    copy = index.parent / name
    shutil.copytree(index, copy)
    with serve_rag({**os.environ, "RAG_INDEX_DIR": str(copy), **env}, wait=120) as served:
        yield served.base_url


@pytest.fixture(scope="module")
def server(index: Path) -> Iterator[str]:
    yield from _serve(index, "open")


@pytest.fixture(scope="module")
def keyed_server(index: Path, llm: str) -> Iterator[str]:
    """A server that needs RAG_API_KEY and has llama.cpp's server write generated answers."""
    yield from _serve(index, "keyed", RAG_API_KEY=KEY, RAG_LLM_MODEL="gemma",
                      RAG_LLM_BASE_URL=llm, RAG_LLM_MAX_TOKENS="96")


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            pytest.fail(f"{path} is missing: apt-get install -y chromium chromium-driver "
                        "(make test does it as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1000"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def wait(driver: WebDriver, condition: Callable[[WebDriver], T], seconds: float = WAIT_S) -> T:
    """Until ``condition`` holds; an element the page re-rendered meanwhile is looked up again."""
    return WebDriverWait(driver, seconds,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def click(driver: WebDriver, css: str) -> None:
    """Click what ``css`` finds once the page has settled (a list may re-render first)."""
    def clicked(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, css).click()
        return True

    wait(driver, clicked)


def visible(driver: WebDriver, css: str) -> WebElement:
    return wait(driver, ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def resources(driver: WebDriver) -> list[str]:
    found: list[str] = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    return found


def ask(driver: WebDriver, question: str) -> WebElement:
    """Type the question, ask, and return #answer once the whole answer is shown."""
    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=ask]").click()
    box = driver.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question)
    driver.find_element(By.ID, "ask-button").click()
    answer = driver.find_element(By.ID, "answer")
    wait(driver, lambda d: answer.get_attribute("aria-busy") is None
         and answer.find_elements(By.CSS_SELECTOR, "p.meta, .error"))
    return answer


def text_of(driver: WebDriver, css: str) -> str:
    text: str = driver.execute_script(f"return document.querySelector({css!r}).textContent")
    return text


def test_docs_render_offline(driver: WebDriver, server: str) -> None:
    driver.get(f"{server}/docs")
    operations = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
    assert len(operations) >= 8
    assert any("/v1/ask" in op.text for op in operations)
    loaded = resources(driver)
    assert any(name.endswith("swagger-ui-bundle.js") for name in loaded)
    assert all(name.startswith(server + "/") for name in loaded), loaded

    driver.get(f"{server}/redoc")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-section-id*='operation/']"))
    assert all(name.startswith(server + "/") for name in resources(driver)), resources(driver)


def test_ask_cites_and_opens_the_quoted_span(driver: WebDriver, server: str) -> None:
    question, doc_id, fact = SEED_QUESTIONS[6]
    with httpx.Client(base_url=server, timeout=60) as http:
        expected = http.post("/v1/ask", json={"question": question}).json()
    first = expected["citations"][0]

    driver.get(server + "/")
    answer = ask(driver, question)
    assert fact in answer.text
    sources = driver.find_elements(By.CSS_SELECTOR, "#sources li")
    assert len(sources) == len(expected["citations"])
    assert first["title"] in sources[0].text and first["quote"] in sources[0].text
    assert all(name.startswith(server + "/") for name in resources(driver))
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / "answer-with-sources.png"))

    answer.find_element(By.XPATH, ".//button[text()='[1]']").click()
    mark = visible(driver, "#doc-text mark")
    assert text_of(driver, "#doc-text mark") == first["quote"]
    assert first["doc_id"] == doc_id and first["doc_id"] in text_of(driver, "#doc-meta")
    # Rendered once: the text before, one <mark>, the text after; the mark scrolled into view.
    nodes = driver.execute_script("return Array.from(document.querySelector('#doc-text')"
                                  ".childNodes, n => n.nodeName)")
    assert nodes == ["#text", "MARK", "#text"]
    assert driver.execute_script(
        "const m = arguments[0].getBoundingClientRect(),"
        " b = document.querySelector('#doc-text').getBoundingClientRect();"
        "return m.top >= b.top && m.bottom <= b.bottom && m.top >= 0"
        " && m.bottom <= window.innerHeight;", mark)
    driver.save_screenshot(str(SHOTS / "highlighted-quote.png"))


def test_abstention_opens_its_closest_passages_marked(driver: WebDriver, server: str) -> None:
    with httpx.Client(base_url=server, timeout=60) as http:
        first = http.post("/v1/ask", json={"question": OFF_TOPIC[1]}).json()[
            "provenance"]["closest"][0]
        text = http.get(f"/v1/documents/{first['doc_id']}").json()["text"]
    driver.get(server + "/")
    answer = ask(driver, OFF_TOPIC[1])
    assert answer.find_element(By.CSS_SELECTOR, ".abstained h3").text == \
        "The documents don't say"
    closest = answer.find_elements(By.CSS_SELECTOR, ".closest button")
    assert closest and not answer.find_elements(By.CSS_SELECTOR, "button.cite")
    closest[0].click()
    visible(driver, "#doc-text mark")
    assert text_of(driver, "#doc-text mark") == text[first["char_start"]:first["char_end"]]
    assert "the passage at characters" in text_of(driver, "#doc-meta")


def test_the_first_screen_shows_the_collection_and_example_questions(
        driver: WebDriver, server: str) -> None:
    documents = httpx.get(f"{server}/v1/documents").json()["documents"]
    driver.get(server + "/")
    wait(driver, lambda d: "indexed" in text_of(d, "#doc-count"))
    assert text_of(driver, "#doc-count") == f"{len(documents)} documents are indexed."
    assert "quoted from your documents" in text_of(driver, "#welcome")
    examples = visible(driver, "#examples").find_elements(By.CSS_SELECTOR, "button.example")
    titles = [d["title"] for d in documents]
    assert examples and all(any(t in e.text for t in titles) for e in examples)
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / "first-screen.png"))
    examples[0].click()  # asks it
    answer = wait(driver, lambda d: d.find_element(By.ID, "answer").get_attribute("aria-busy")
                  is None and d.find_elements(By.CSS_SELECTOR, "#answer p.meta")
                  and d.find_element(By.ID, "answer"))
    assert "answer" in answer.text
    assert not driver.find_element(By.ID, "welcome").is_displayed()
    # a favicon, and nothing the page asks for is missing
    statuses = driver.execute_script(
        "const urls = [document.querySelector('link[rel=icon]').href, 'favicon.ico',"
        " 'static/app.js', 'static/style.css'];"
        "return Promise.all(urls.map(u => fetch(u).then(r => r.status)))")
    assert statuses == [200, 200, 200, 200]


def test_titles_are_readable_and_the_picker_offers_every_format(driver: WebDriver,
                                                                server: str) -> None:
    driver.get(server + "/")
    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=documents]").click()
    row = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f"tr[data-doc-id='{SEED_A}']"))
    title = row.find_element(By.CSS_SELECTOR, "td").text
    # seed A's first line is a sentence and its file name a hash: its opening words name it
    assert title.startswith("At a time when") and not re.search(r"[0-9a-f]{8}", title), title
    picker = driver.find_element(By.ID, "file").get_attribute("accept")
    assert picker is not None
    assert picker.split(",") == sorted(readable_suffixes(True))
    assert {".docx", ".pptx", ".xlsx", ".csv", ".epub", ".eml", ".png"} <= set(picker.split(","))
    assert all(s in text_of(driver, "#formats") for s in picker.split(","))


def test_the_viewer_closes_on_a_new_answer_an_abstention_and_a_tab(driver: WebDriver,
                                                                  server: str) -> None:
    question = SEED_QUESTIONS[6][0]
    driver.get(server + "/")

    def open_quote() -> None:
        ask(driver, question).find_element(By.XPATH, ".//button[text()='[1]']").click()
        visible(driver, "#doc-text mark")

    open_quote()
    ask(driver, SEED_QUESTIONS[5][0])
    assert not driver.find_element(By.ID, "doc").is_displayed()
    open_quote()
    ask(driver, OFF_TOPIC[1])  # an abstention
    assert not driver.find_element(By.ID, "doc").is_displayed()
    open_quote()
    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=search]").click()
    assert not driver.find_element(By.ID, "doc").is_displayed()


def test_on_a_phone_nothing_runs_off_the_screen(driver: WebDriver, server: str) -> None:
    """390×844, as an iPhone 12-15: the answer, the viewer with its relative source, the
    document list; the page is never wider than the screen."""
    question, doc_id, _ = SEED_QUESTIONS[6]
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        driver.get(server + "/")
        ask(driver, question).find_element(By.XPATH, ".//button[text()='[1]']").click()
        visible(driver, "#doc-text mark")
        meta = text_of(driver, "#doc-meta")
        assert meta.startswith(f"From {doc_id}.txt"), meta  # relative, never the server's path
        assert str(SEEDS) not in meta and str(ROOT) not in meta
        assert _fits(driver)
        driver.save_screenshot(str(SHOTS / "phone-highlighted-quote.png"))
        driver.find_element(By.CSS_SELECTOR, ".tab[data-view=documents]").click()
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"tr[data-doc-id='{SEED_A}']"))
        assert _fits(driver)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _fits(driver: WebDriver) -> bool:
    fits: bool = driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    return fits


def test_search_shows_ranked_passages_with_stage_scores(driver: WebDriver,
                                                       server: str) -> None:
    driver.get(server + "/")
    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=search]").click()
    driver.find_element(By.ID, "query").send_keys(SEED_QUESTIONS[5][0])
    driver.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()
    hits = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#hits li"))
    assert len(hits) == 5
    for above, below in zip(hits, hits[1:], strict=False):  # one a row, a rule between
        assert below.location["y"] >= above.location["y"] + above.size["height"]
        assert above.value_of_css_property("border-bottom-style") == "solid"
    assert "dense" in hits[0].text and "bm25" in hits[0].text and "score" in hits[0].text
    assert SEED_QUESTIONS[5][2] in " ".join(h.text for h in hits)


def test_upload_ask_delete(driver: WebDriver, server: str, tmp_path: Path) -> None:
    question = "What makes oolong tea different from green tea?"
    path = tmp_path / "oolong.txt"
    path.write_text("Oolong tea is partly oxidised, while green tea is steamed to stop "
                    "oxidation.\n")
    driver.get(server + "/")
    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=documents]").click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"tr[data-doc-id='{SEED_B}']"))
    driver.find_element(By.ID, "file").send_keys(str(path))
    wait(driver, ec.text_to_be_present_in_element((By.ID, "upload-message"), "Added oolong.txt"))
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-doc-id=oolong]"))

    assert "partly oxidised" in ask(driver, question).text

    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=documents]").click()
    click(driver, "tr[data-doc-id=oolong] button.danger")
    alert = wait(driver, ec.alert_is_present())
    assert "oolong" in alert.text
    alert.accept()
    wait(driver, ec.text_to_be_present_in_element((By.ID, "upload-message"), "Deleted"))
    wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "tr[data-doc-id=oolong]"))
    assert httpx.get(f"{server}/v1/documents/oolong").status_code == 404


def test_a_refused_upload_says_why(driver: WebDriver, server: str, tmp_path: Path) -> None:
    png = b"GIF89a" + bytes(range(256)) * 4  # a GIF named .png: no format of ours
    refused = httpx.post(f"{server}/v1/documents", files={"file": ("x.png", png)})
    assert refused.status_code == 415
    path = tmp_path / "x.png"
    path.write_bytes(png)
    driver.get(server + "/")
    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=documents]").click()
    driver.find_element(By.ID, "file").send_keys(str(path))
    message = visible(driver, "#upload-message.error")
    wait(driver, ec.text_to_be_present_in_element((By.ID, "upload-message"),
                                                  refused.json()["detail"]))
    assert "415" in message.text


def test_uploading_a_name_again_asks_before_replacing(driver: WebDriver, server: str,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "jasmine.txt"
    path.write_text("Jasmine tea is scented with jasmine blossoms.\n")
    driver.get(server + "/")
    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=documents]").click()
    driver.find_element(By.ID, "file").send_keys(str(path))
    wait(driver, ec.text_to_be_present_in_element((By.ID, "upload-message"), "Added"))
    path.write_text("Jasmine tea is green tea scented with jasmine blossoms at night.\n")
    for accept, said in ((False, "left as it was"), (True, "Replaced jasmine.txt")):
        driver.find_element(By.ID, "file").send_keys(str(path))
        alert = wait(driver, ec.alert_is_present())
        assert "'jasmine' is already indexed" in alert.text and "Replace" in alert.text
        alert.accept() if accept else alert.dismiss()
        wait(driver, ec.text_to_be_present_in_element((By.ID, "upload-message"), said))
    assert "at night" in httpx.get(f"{server}/v1/documents/jasmine").json()["text"]
    assert httpx.delete(f"{server}/v1/documents/jasmine").status_code == 200


ATTACK = """<!doctype html><title>loading</title><script>
const form = new FormData();
form.append('file', new File(['The Rokkasho plant was permanently closed in 2020.'],
                             '%s.txt', {type: 'text/plain'}));
fetch('%s/v1/documents?replace=true', {method: 'POST', mode: 'no-cors', body: form})
  .then(() => { document.title = 'sent'; }, (e) => { document.title = 'failed ' + e; });
</script>"""


def test_a_page_on_another_origin_cannot_upload(driver: WebDriver, server: str,
                                                tmp_path: Path) -> None:
    """Issue 26's attack: a page served from another port (another origin) POSTs a form with
    a file named like an indexed seed: a "simple" request, sent without a preflight. It is
    refused and the seed is unchanged."""
    (tmp_path / "attack.html").write_text(ATTACK % (SEED_A, server))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    attacker = ThreadingHTTPServer((HOST, free_port()), handler)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    with httpx.Client(base_url=server, timeout=60) as http:
        seed = http.get(f"/v1/documents/{SEED_A}").json()
        before = http.get("/readyz").json()["snapshot"]
        refused = _refusals(http)
        try:
            driver.get(f"http://{HOST}:{attacker.server_address[1]}/attack.html")
            wait(driver, lambda d: d.title != "loading")
            assert driver.title == "sent"  # the browser sent it (the answer is opaque)
        finally:
            attacker.shutdown()
            attacker.server_close()
        assert _refusals(http) == refused + 1  # it arrived, and was answered 403
        after = http.get(f"/v1/documents/{SEED_A}").json()
        assert (after["sha256"], after["source"]) == (seed["sha256"], seed["source"])
        assert hashlib.sha256(after["text"].encode()).digest() == \
            hashlib.sha256(seed["text"].encode()).digest()
        assert http.get("/readyz").json()["snapshot"] == before


def _refusals(http: httpx.Client) -> float:
    """Requests the server refused as cross-origin so far (its /metrics)."""
    for line in http.get("/metrics").text.splitlines():
        if line.startswith('rag_http_requests_total{method="POST",route="unmatched",'
                           'status="403"}'):
            return float(line.split()[-1])
    return 0.0


def _enter_key(driver: WebDriver, url: str) -> None:
    driver.get(url + "/")
    form = visible(driver, "#key-form")
    assert "API key" in form.text
    driver.find_element(By.ID, "key-input").send_keys(KEY)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, ec.invisibility_of_element_located((By.ID, "key-form")))


def test_api_key_is_asked_for_and_kept_for_the_session(driver: WebDriver,
                                                      keyed_server: str) -> None:
    for open_path in ("/", "/static/app.js", "/docs"):
        assert httpx.get(keyed_server + open_path).status_code == 200
    assert httpx.get(keyed_server + "/v1/documents").status_code == 401
    _enter_key(driver, keyed_server)
    question, _, fact = SEED_QUESTIONS[6]
    driver.find_element(By.CSS_SELECTOR, "input[name=mode][value=extractive]").click()
    assert fact in ask(driver, question).text
    assert driver.execute_script("return sessionStorage.getItem('rag-api-key')") == KEY
    driver.refresh()  # same tab: the key is still there, no form
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#documents tr[data-doc-id]"))
    assert not driver.find_element(By.ID, "key-form").is_displayed()


def test_generative_answer_streams_and_shows_rejected_sentences(
        driver: WebDriver, keyed_server: str) -> None:
    """With the real tiny LLM (it recites its prompt), what must hold whatever it writes:
    the generative mode is the default, an answer is shown with its fallback said, and
    the sentences verification left out are listed with their reasons on request."""
    question = SEED_QUESTIONS[6][0]
    with httpx.Client(base_url=keyed_server, timeout=300,
                      headers={"Authorization": f"Bearer {KEY}"}) as http:
        expected = http.post("/v1/ask", json={"question": question, "k": 5}).json()
    rejected_by_api = expected["provenance"]["generation"]["rejected"]
    driver.get(keyed_server + "/")
    if driver.execute_script("return sessionStorage.getItem('rag-api-key')") != KEY:
        _enter_key(driver, keyed_server)
    mode = visible(driver, "#mode")
    generative = mode.find_element(By.CSS_SELECTOR, "input[value=generative]")
    assert generative.is_selected()  # the server's default with an LLM
    answer = ask(driver, question)
    for c in expected["citations"]:
        assert f"[{c['n']}]" in answer.text
    assert rejected_by_api  # the tiny model's sentences are caught, not shown
    toggle = answer.find_element(By.CSS_SELECTOR, "button[aria-controls=rejected]")
    assert f"{len(rejected_by_api)} generated sentence" in toggle.text
    toggle.click()
    rejected = visible(driver, "#rejected")
    for r in rejected_by_api:
        assert r["reason"] in rejected.text
    assert toggle.get_attribute("aria-expanded") == "true"


def test_a_watched_folder_of_scans_shows_its_sync_and_ocr_citations(
        driver: WebDriver, tmp_path: Path) -> None:
    from eval.scans import FONTS, PARAGRAPHS, render

    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "permit.png").write_bytes(
        render(PARAGRAPHS[2:3], FONTS[3], skew=1.1, size=(1500, 500), seed=4).png)
    env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "index")}
    with serve_rag(env, "--watch", str(folder), wait=120) as served:
        driver.get(served.base_url + "/")
        line = wait(driver, lambda d: "last sync" in text_of(d, "#sync-status")
                    and text_of(d, "#sync-status"), seconds=120)
        assert line.startswith("Watching scans") and "1 added" in line
        ask(driver, "Where is the office of the Aldermoor Trust?")
        sources = visible(driver, "#sources li .meta").text
        assert sources.startswith("permit, p. 1 (OCR), characters"), sources
        driver.save_screenshot(str(tmp_path / "ocr.png"))


class _PrefixProxy(BaseHTTPRequestHandler):
    """A reverse proxy as in docs/deploying.md's nginx recipe: /rag/... to the server with
    /rag stripped, the Host passed on. Whole responses (an event stream arrives at once)."""

    upstream = ""

    def _forward(self) -> None:
        if not self.path.startswith(PREFIX + "/"):
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("content-length", "connection")}
        answer = httpx.request(self.command, self.upstream + self.path[len(PREFIX):],
                               headers=headers, content=body, timeout=120)
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection",
                                    "content-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_page_works_under_a_path_prefix(driver: WebDriver, index: Path) -> None:
    """`rag serve --root-path /rag` behind a proxy serving it at /rag/: the page, its
    answers and quotes, and the API docs, every request under the prefix."""
    copy = index.parent / "prefixed"
    shutil.copytree(index, copy)
    env = {**os.environ, "RAG_INDEX_DIR": str(copy)}
    with serve_rag(env, "--root-path", PREFIX, wait=120) as served:
        handler = type("Proxy", (_PrefixProxy,), {"upstream": served.base_url})
        proxy = ThreadingHTTPServer((HOST, free_port()), handler)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        base = f"http://{HOST}:{proxy.server_address[1]}{PREFIX}"
        try:
            driver.get(base + "/")
            wait(driver, lambda d: "2 documents are indexed" in text_of(d, "#doc-count"))
            question, _, fact = SEED_QUESTIONS[6]
            answer = ask(driver, question)
            assert fact in answer.text
            answer.find_element(By.XPATH, ".//button[text()='[1]']").click()
            visible(driver, "#doc-text mark")
            assert all(name.startswith(base + "/") for name in resources(driver)), \
                resources(driver)
            driver.get(base + "/docs")
            operations = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
            assert any("/v1/ask" in op.text for op in operations)
            assert all(name.startswith(base + "/") for name in resources(driver)), \
                resources(driver)
            # OpenAPI names the prefix, so the docs' "Try it out" goes through the proxy
            assert httpx.get(base + "/openapi.json").json()["servers"] == [{"url": PREFIX}]
        finally:
            proxy.shutdown()
            proxy.server_close()

"""Collections and scoped keys against one real `rag serve` holding three collections:
"default" (the seeds), "alpha" and "beta", with keys of every role scoped to alpha and one to
beta. A key of alpha never reads, searches, cites, lists, counts or deletes anything of beta,
through any route: /v1 (every collection route, streamed events included), the collections
and keys routes, /v1/chat/completions and /v1/models (the openai SDK), the /mcp tools (the
mcp client), /metrics, /readyz, and the web page in headless Chromium. Keys are hashed on
disk, and a revoked or expired key is refused at once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest
from mcp import Client
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from eval.harness import RAG, Server, serve_rag
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.keys import KeyStore
from rag.pipeline import Pipeline
from rag.pipelines import Pipelines
from rag.scorer import EvidenceScorer
from tests.seed_facts import SEEDS
from tests.test_mcp import http_client
from tests.test_webui import ask as ask_in_page
from tests.test_webui import driver, visible, wait  # noqa: F401  (the browser fixture)

ADMIN = "tenancy-admin-key"
SECRET = "ZANZIBAR-7731"  # only in beta: no response to an alpha key may hold it
BETA_ONLY = "vault/codes"  # a doc_id only beta has
LIGHTHOUSE = "Who keeps the lighthouse at Cape Wrath?"
ALPHA = {
    "handbook/lighthouse.txt": (
        "The lighthouse at Cape Wrath is kept by Marguerite Okonkwo, who climbs its 112 "
        "steps every evening. She has kept the light since 2009.\n\nThe keeper's log is "
        "sent to the harbour office each Monday.", {"team": "ops", "year": 2021}),
    "handbook/leave.txt": (
        "Every employee has 27 days of paid leave a year. Unused leave carries over until "
        "March.\n\nLeave is requested from the team lead two weeks ahead.",
        {"team": "hr", "year": 2023}),
    "legal/nda.txt": (
        "A non-disclosure agreement binds both parties for five years after signing. "
        "Breaches are settled by arbitration in Geneva.", {"team": "legal", "year": 2020}),
    "shared.txt": ("The shared notice board of alpha lists the fire drill on Fridays.", {}),
}
BETA = {
    "vault/codes.txt": (f"The vault code of beta is {SECRET}. The lighthouse at Cape Wrath "
                        "is kept by Tobias Weller in the beta records.", {"team": "ops"}),
    "shared.txt": (f"Beta's own shared notice: the code {SECRET} opens the archive.", {}),
}


@dataclass
class Lab:
    root: Path
    server: Server
    keys: dict[str, str]
    ids: dict[str, str]
    seen: list[str] = field(default_factory=list)  # every body an alpha key was answered

    @property
    def url(self) -> str:
        return self.server.base_url

    def http(self, who: str) -> httpx.Client:
        key = ADMIN if who == "admin" else self.keys[who]
        return httpx.Client(base_url=self.url, timeout=120,
                            headers={"Authorization": f"Bearer {key}"})


def _folder(path: Path, docs: dict[str, tuple[str, dict[str, Any]]]) -> Path:
    for name, (text, meta) in docs.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text + "\n")
        if meta:
            (path / f"{name}.meta.json").write_text(json.dumps(meta))
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder,
        scorer: EvidenceScorer) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("tenancy")
    root = work / "index"
    default = Pipeline(Settings(index_dir=root), embedder=embedder, scorer=scorer)
    default.ingest([SEEDS])
    served = Pipelines(default)
    for name, docs in (("alpha", ALPHA), ("beta", BETA)):
        served.create(name)
        served.get(name).ingest([_folder(work / name, docs)])
    store = KeyStore(root)
    keys = {}
    ids = {}
    for who, scope, role in (("read", ["alpha"], "read"), ("write", ["alpha"], "write"),
                             ("admin_a", ["alpha"], "admin"), ("beta", ["beta"], "read")):
        keys[who], record = store.create(scope, role, time.time(), label=who)
        ids[who] = record.id
    with serve_rag({"RAG_INDEX_DIR": str(root), "RAG_API_KEY": ADMIN}, wait=180) as server:
        yield Lab(root, server, keys, ids)


ALPHA_KEYS = ("read", "write", "admin_a")


def _remember(lab: Lab, r: httpx.Response) -> httpx.Response:
    lab.seen.append(r.text)
    return r


def test_every_collection_route_of_beta_is_a_404_to_alpha_keys(lab: Lab) -> None:
    with lab.http("admin") as admin:
        missing = admin.post("/v1/collections/gamma/search", json={"query": "x"})
        assert missing.status_code == 404
        beta_text = admin.get(f"/v1/collections/beta/documents/{BETA_ONLY}").json()["text"]
        assert SECRET in beta_text
    for who in ALPHA_KEYS:
        with lab.http(who) as http:
            def refused(method: str, path: str, who: str = who, **kwargs: Any) -> None:
                r = _remember(lab, http.request(method, path, **kwargs))
                assert r.status_code == 404, (who, method, path, r.status_code, r.text)
                # The very answer a collection that does not exist gets.
                assert re.sub("'[^']*'", "'X'", r.json()["detail"], count=1) == \
                    re.sub("'[^']*'", "'X'", missing.json()["detail"], count=1), r.text

            for prefix in ("/v1/collections/beta", "/v1"):  # beta, and default (not theirs)
                refused("POST", f"{prefix}/search", json={"query": "vault code"})
                refused("POST", f"{prefix}/ask", json={"question": "What is the vault code?"})
                refused("POST", f"{prefix}/ask", json={"question": "What is the vault code?",
                                                       "stream": True})
                refused("GET", f"{prefix}/documents")
                refused("GET", f"{prefix}/sync")
                refused("GET", f"{prefix}/documents/{BETA_ONLY}")
                refused("GET", f"{prefix}/documents/{BETA_ONLY}?start=0&end=20")
                refused("PATCH", f"{prefix}/documents/{BETA_ONLY}", json={"metadata": {"a": 1}})
                refused("DELETE", f"{prefix}/documents/{BETA_ONLY}")
                refused("POST", f"{prefix}/documents", files={"file": ("x.txt", b"hello")})
            refused("GET", "/v1/collections/beta")
            refused("DELETE", "/v1/collections/beta")
            listed = _remember(lab, http.get("/v1/collections")).json()["collections"]
            assert [c["name"] for c in listed] == ["alpha"] and listed[0]["documents"] == 4
            # A doc_id beta also has, read through alpha: alpha's own document.
            shared = _remember(lab, http.get("/v1/collections/alpha/documents/shared")).json()
            assert "fire drill" in shared["text"]
            _remember(lab, http.get(f"/v1/collections/alpha/documents/{BETA_ONLY}"))
    with lab.http("admin") as admin:  # nothing of beta changed
        assert admin.get(f"/v1/collections/beta/documents/{BETA_ONLY}").json()["text"] == \
            beta_text
        assert admin.get("/v1/collections/beta").json()["documents"] == 2
    assert not any(SECRET in body or "Tobias" in body for body in lab.seen)


def test_answers_and_streams_of_alpha_hold_only_alpha(lab: Lab) -> None:
    with lab.http("read") as http:
        for body in ({"question": LIGHTHOUSE}, {"question": LIGHTHOUSE, "stream": True},
                     {"question": "What is the vault code of beta?"},
                     {"question": "What is the vault code of beta?", "stream": True}):
            r = _remember(lab, http.post("/v1/collections/alpha/ask", json=body))
            assert r.status_code == 200, r.text
        answer = json.loads(lab.seen[-4])
        assert "Marguerite Okonkwo" in answer["answer"] and not answer["abstained"]
        assert {c["doc_id"] for c in answer["citations"]} == {"handbook/lighthouse"}
        abstained = json.loads(lab.seen[-2])
        assert abstained["abstained"]
        read = {p["doc_id"] for p in abstained["provenance"]["closest"]}
        assert read and read <= {"handbook/lighthouse", "handbook/leave", "legal/nda", "shared"}
        assert "event: answer" in lab.seen[-1] and "event: answer" in lab.seen[-3]
        found = _remember(lab, http.post("/v1/collections/alpha/search",
                                         json={"query": "vault code archive", "k": 50}))
        assert {h["doc_id"] for h in found.json()["hits"]} <= \
            {"handbook/lighthouse", "handbook/leave", "legal/nda", "shared"}
    assert not any(SECRET in body or "Tobias" in body for body in lab.seen)


def test_filters_in_a_collection_over_http(lab: Lab) -> None:
    with lab.http("read") as http:
        def hits(f: object) -> set[str]:
            r = _remember(lab, http.post("/v1/collections/alpha/search",
                                         json={"query": "days employee lighthouse", "k": 10,
                                               "filter": f}))
            assert r.status_code == 200, r.text
            return {h["doc_id"] for h in r.json()["hits"]}

        assert hits("team=hr") == {"handbook/leave"}
        assert hits({"path": "handbook/"}) == {"handbook/leave", "handbook/lighthouse"}
        assert hits("year>=2021") == {"handbook/leave", "handbook/lighthouse"}
        assert hits({"not": {"field": "team", "exists": True}}) == {"shared"}
        assert hits("team=nobody") == set()
        bad = http.post("/v1/collections/alpha/search",
                        json={"query": "x", "filter": {"or": [{"field": "year", "lt": "x",
                                                               "gt": 1}]}})
        assert bad.status_code == 422
        assert bad.json()["detail"].startswith("filter.or.0: range bounds")
        nothing = http.post("/v1/collections/alpha/ask",
                            json={"question": LIGHTHOUSE, "filter": "team=nobody"}).json()
        assert nothing["abstained"] and not nothing["citations"]


def test_roles_inside_the_collection(lab: Lab) -> None:
    with lab.http("read") as read, lab.http("write") as write, lab.http("admin_a") as admin:
        upload = {"file": ("memo.txt", b"The canteen opens at half past seven.\n")}
        r = read.post("/v1/collections/alpha/documents", files=upload)
        assert r.status_code == 403 and "may read collection 'alpha', not write" in r.text
        r = write.post("/v1/collections/alpha/documents", files=upload,
                       data={"team": "ops", "floor": "3"})
        assert r.status_code == 201, r.text
        doc = write.get("/v1/collections/alpha/documents/memo").json()
        assert doc["metadata"]["team"] == "ops" and doc["metadata"]["floor"] == 3
        assert doc["metadata"]["format"] == "txt" and doc["source"] == "upload:memo.txt"
        patched = write.patch("/v1/collections/alpha/documents/memo",
                              json={"metadata": {"floor": None, "reviewed": True}})
        assert patched.status_code == 200 and patched.json()["metadata"]["reviewed"] is True
        assert "floor" not in patched.json()["metadata"]
        hit = write.post("/v1/collections/alpha/search",
                         json={"query": "canteen", "filter": "reviewed=true"}).json()["hits"]
        assert [h["doc_id"] for h in hit] == ["memo"]
        assert read.delete("/v1/collections/alpha/documents/memo").status_code == 403
        assert write.delete("/v1/collections/alpha/documents/memo").status_code == 200
        for who in (write, admin):  # only an admin of every collection makes collections
            assert who.post("/v1/collections", json={"name": "delta"}).status_code == 403
        assert write.get("/v1/keys").status_code == 403
        assert write.delete("/v1/collections/alpha").status_code == 403
        # An admin of alpha manages alpha's keys only.
        listed = admin.get("/v1/keys").json()["keys"]
        assert {k["label"] for k in listed} == {"read", "write", "admin_a"}
        assert admin.post("/v1/keys", json={"collections": ["beta"],
                                            "role": "read"}).status_code == 404
        assert admin.post("/v1/keys", json={"collections": ["*"],
                                            "role": "read"}).status_code == 403
        assert admin.delete(f"/v1/keys/{lab.ids['beta']}").status_code == 404
        made = admin.post("/v1/keys", json={"collections": ["alpha"], "role": "read",
                                            "label": "temp"})
        assert made.status_code == 201 and made.json()["key"].startswith("rag_")
        assert admin.delete(f"/v1/keys/{made.json()['id']}").json()["revoked"]


def test_openai_models_and_chat_follow_the_key(lab: Lab) -> None:
    def client(who: str) -> openai.OpenAI:
        key = ADMIN if who == "admin" else lab.keys[who]
        return openai.OpenAI(base_url=f"{lab.url}/v1", api_key=key, max_retries=0,
                             timeout=120)

    assert [m.id for m in client("read").models.list()] == ["rag-extractive@alpha"]
    assert [m.id for m in client("beta").models.list()] == ["rag-extractive@beta"]
    assert {m.id for m in client("admin").models.list()} == \
        {"rag-extractive", "rag-extractive@alpha", "rag-extractive@beta"}
    for who in ALPHA_KEYS:
        for model in ("rag-extractive@beta", "rag-extractive", "rag-extractive@gamma"):
            with pytest.raises(openai.NotFoundError) as refused:
                client(who).chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "vault code?"}])
            assert "does not exist here" in str(refused.value)
            assert "beta" not in str(refused.value).replace(model, "")
    reply = client("read").chat.completions.create(
        model="rag-extractive@alpha", messages=[{"role": "user", "content": LIGHTHOUSE}])
    message = reply.choices[0].message
    assert "Marguerite Okonkwo" in (message.content or "")
    urls = [a.url_citation.url for a in message.annotations or []]
    assert urls and all(u.startswith(f"{lab.url}/v1/collections/alpha/documents/")
                        for u in urls)
    with lab.http("read") as http:
        span = http.get(urls[0]).json()["span"]["text"]
    assert span in {c["quote"] for c in reply.model_dump()["rag"]["citations"]}
    narrowed = client("read").chat.completions.create(
        model="rag-extractive@alpha", messages=[{"role": "user", "content": LIGHTHOUSE}],
        extra_body={"filter": "team=nobody"})
    assert narrowed.model_dump()["rag"]["abstained"]
    with pytest.raises(openai.BadRequestError, match="filter: range bounds are all numbers"):
        client("read").chat.completions.create(
            model="rag-extractive@alpha", messages=[{"role": "user", "content": LIGHTHOUSE}],
            extra_body={"filter": {"field": "year", "gte": True}})
    streamed = client("read").chat.completions.create(
        model="rag-extractive@alpha", stream=True,
        messages=[{"role": "user", "content": "What is the vault code of beta?"}])
    chunks = [c.model_dump_json() for c in streamed]
    lab.seen.extend(chunks)
    assert not any(SECRET in c for c in chunks)


def test_mcp_tools_reach_only_the_keys_collections(lab: Lab) -> None:
    async def check(client: Client) -> None:
        def data(result: Any) -> dict[str, Any]:
            assert not result.is_error, result.content
            lab.seen.append(json.dumps(result.structured_content))
            return result.structured_content  # type: ignore[no-any-return]

        listed = data(await client.call_tool("list_collections", {}))["collections"]
        assert [c["name"] for c in listed] == ["alpha"]
        for collection in ("beta", "default"):
            for tool, args in (("search", {"query": "vault code"}),
                               ("ask", {"question": "What is the vault code?"}),
                               ("get_document", {"doc_id": BETA_ONLY}),
                               ("list_documents", {})):
                result = await client.call_tool(tool, {**args, "collection": collection})
                assert result.is_error, (tool, collection)
                text = result.content[0].text  # type: ignore[union-attr]
                lab.seen.append(text)
                assert f"no collection '{collection}'" in text, text
        docs = data(await client.call_tool("list_documents", {"collection": "alpha"}))
        assert {d["doc_id"] for d in docs["documents"]} == \
            {"handbook/lighthouse", "handbook/leave", "legal/nda", "shared"}
        answer = data(await client.call_tool("ask", {"question": LIGHTHOUSE,
                                                     "collection": "alpha"}))
        assert "Okonkwo" in answer["answer"]
        hits = data(await client.call_tool("search", {"query": "leave days", "k": 10,
                                                      "collection": "alpha",
                                                      "filter": {"path": "legal/"}}))
        assert {h["doc_id"] for h in hits["hits"]} == {"legal/nda"}

    for who in ALPHA_KEYS:
        anyio.run(_mcp, lab, who, check)
    assert not any(SECRET in body for body in lab.seen)


async def _mcp(lab: Lab, who: str, check: Any) -> None:
    async with http_client(lab.url, {"Authorization": f"Bearer {lab.keys[who]}"}) as client:
        await check(client)


def test_metrics_and_readyz_name_no_collection(lab: Lab) -> None:
    with lab.http("read") as http:
        assert http.get("/metrics").status_code == 401  # an admin of every collection only
        ready = http.get("/readyz").json()
        assert ready == {"status": "ready", "snapshot": None, "documents": None, "chunks": None}
    with lab.http("admin") as admin:
        metrics = admin.get("/metrics").text
        assert "/v1/collections/{collection}/search" in metrics
        assert "beta" not in metrics and "alpha" not in metrics and "vault" not in metrics
        assert admin.get("/readyz").json()["documents"] == 2


def test_revoked_and_expired_keys_are_refused_at_once(lab: Lab) -> None:
    text = (lab.root / "keys.json").read_text()
    for key in lab.keys.values():
        assert key not in text and key.split("_", 2)[2] not in text
    expires = int(time.time()) + 3
    with lab.http("admin") as admin:
        soon = admin.post("/v1/keys", json={"collections": ["alpha"], "role": "read",
                                            "expires": time.strftime(
                                                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))})
        assert soon.status_code == 201, soon.text
        made = admin.post("/v1/keys", json={"collections": ["alpha"], "role": "read"}).json()
    for key in (soon.json()["key"], made["key"]):
        assert httpx.get(f"{lab.url}/v1/collections/alpha/documents", timeout=30,
                         headers={"Authorization": f"Bearer {key}"}).status_code == 200
    revoked = subprocess.run([RAG, "keys", "revoke", made["id"]], capture_output=True,
                             text=True, env={**os.environ, "RAG_INDEX_DIR": str(lab.root)})
    assert revoked.returncode == 0, revoked.stderr
    r = httpx.get(f"{lab.url}/v1/collections/alpha/documents", timeout=30,
                  headers={"Authorization": f"Bearer {made['key']}"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    time.sleep(max(0.0, expires - time.time()) + 0.1)
    r = httpx.get(f"{lab.url}/v1/collections/alpha/documents", timeout=30,
                  headers={"Authorization": f"Bearer {soon.json()['key']}"})
    assert r.status_code == 401
    for path in ("/v1/collections", "/v1/models"):
        assert httpx.get(lab.url + path, timeout=30).status_code == 401  # no key at all


def test_an_admin_makes_and_deletes_a_collection_whole(lab: Lab) -> None:
    with lab.http("admin") as admin:
        assert admin.post("/v1/collections", json={"name": "No Way"}).status_code == 422
        made = admin.post("/v1/collections", json={"name": "gamma"})
        assert made.status_code == 201 and made.json()["documents"] == 0
        assert admin.post("/v1/collections", json={"name": "gamma"}).status_code == 409
        assert admin.post("/v1/collections/gamma/search",
                          json={"query": "anything"}).json()["hits"] == []
        up = admin.post("/v1/collections/gamma/documents",
                        files={"file": ("g.txt", b"Gamma holds the gardening rota.\n")})
        assert up.status_code == 201
        assert admin.get("/v1/collections/gamma").json()["documents"] == 1
        assert admin.delete("/v1/collections/gamma").json() == {"name": "gamma",
                                                                 "deleted": True}
        assert admin.get("/v1/collections/gamma").status_code == 404
        assert not (lab.root / "collections" / "gamma").exists()
        assert sorted(p.name for p in (lab.root / "collections").iterdir()
                      if not p.name.startswith(".")) == ["alpha", "beta"]
        assert admin.delete("/v1/collections/default").status_code == 422


def test_the_cli_uses_collections_keys_and_filters(lab: Lab) -> None:
    env = {**os.environ, "RAG_INDEX_DIR": str(lab.root)}

    def rag(*args: str) -> Any:
        done = subprocess.run([RAG, *args, "--json"], capture_output=True, text=True, env=env,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    listed = rag("collections")["collections"]
    assert [c["name"] for c in listed][:3] == ["default", "alpha", "beta"]
    hits = rag("search", "paid leave days", "--collection", "alpha", "--where", "team=hr",
               "--path", "handbook/")["hits"]
    assert {h["doc_id"] for h in hits} == {"handbook/leave"}
    made = rag("keys", "create", "--collection", "alpha,beta", "--role", "read",
               "--label", "both")
    assert made["key"].startswith("rag_") and made["collections"] == ["alpha", "beta"]
    assert any(k["id"] == made["id"] for k in rag("keys", "list")["keys"])
    for args in (["keys", "create", "--collection", "nope", "--role", "read"],
                 ["ingest", "--collection", "nope", str(SEEDS)]):  # refused before any work
        bad = subprocess.run([RAG, *args], capture_output=True, text=True, env=env)
        assert bad.returncode == 1 and "no collection 'nope'" in bad.stderr, bad.stderr
    assert not (lab.root / "collections" / "nope").exists()


def test_the_web_page_switches_collections_and_filters(lab: Lab,
                                                      driver: WebDriver) -> None:  # noqa: F811
    driver.get(lab.url + "/")
    form = visible(driver, "#key-form")
    driver.find_element(By.ID, "key-input").send_keys(lab.keys["read"])
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, ec.invisibility_of_element_located((By.ID, "key-form")))
    wait(driver, lambda d: d.find_element(By.ID, "collection").get_attribute("value") == "alpha")
    options = [o.get_attribute("value") for o in
               driver.find_elements(By.CSS_SELECTOR, "#collection option")]
    assert options == ["alpha"]
    assert "Okonkwo" in ask_in_page(driver, LIGHTHOUSE).text
    driver.find_element(By.ID, "filter").send_keys("team=nobody")
    answer = ask_in_page(driver, LIGHTHOUSE)
    assert answer.find_element(By.CSS_SELECTOR, ".abstained h3").text == \
        "The documents don't say"
    driver.find_element(By.ID, "filter").clear()
    driver.find_element(By.ID, "filter").send_keys("path=legal/")
    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=search]").click()
    driver.find_element(By.ID, "query").send_keys("leave days lighthouse agreement")
    driver.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()
    hits = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#hits li"))
    assert hits and all("legal/nda" in h.text for h in hits)
    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=documents]").click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-doc-id='legal/nda']"))
    shown = {r.get_attribute("data-doc-id") for r in
             driver.find_elements(By.CSS_SELECTOR, "#documents tr[data-doc-id]")}
    assert shown == {"handbook/lighthouse", "handbook/leave", "legal/nda", "shared"}
    page = driver.execute_script("return document.body.textContent")
    assert SECRET not in page and "beta" not in page and BETA_ONLY not in page
    # The admin's key sees every collection and switches between them.
    driver.execute_script("sessionStorage.clear()")
    driver.get(lab.url + "/")
    visible(driver, "#key-form")
    driver.find_element(By.ID, "key-input").send_keys(ADMIN)
    driver.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#collection option")) >= 3)
    Select(driver.find_element(By.ID, "collection")).select_by_value("beta")
    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=documents]").click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"tr[data-doc-id='{BETA_ONLY}']"))
    assert driver.execute_script("return sessionStorage.getItem('rag-collection')") == "beta"

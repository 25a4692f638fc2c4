"""How an example is recorded: a request (``Call``: the route it documents, what it sends,
the status it must get) sent to a real server, and what came back, with the curl command that
sends it (``Recorder``). eval/docsite/examples.py says which requests."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

import httpx

# The address the examples show: where `make run` serves. The server's links say it too.
BASE = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Call:
    """One request: the route it documents (OpenAPI's method and path) and what it sends."""

    route: str
    title: str
    path: str
    json: Any = None
    upload: tuple[str, bytes] | None = None
    expect: int = 200
    form: tuple[tuple[str, str], ...] = ()  # an upload's other form fields (its metadata)
    key: str | None = None  # the shell variable holding the key it sends, if it sends one

    @property
    def method(self) -> str:
        return self.route.split()[0]

    def curl(self) -> str:
        url = shlex.quote(BASE + self.path)
        streams = isinstance(self.json, dict) and self.json.get("stream")
        words = ["curl", "-sN" if streams else "-s"]
        if self.method not in ("GET", "POST"):
            words += ["-X", self.method]
        if self.key is not None:
            words += ["-H", f'"Authorization: Bearer ${self.key}"']
        if self.upload is not None:
            fields = [f"-F {shlex.quote(f'{name}={value}')}" for name, value in self.form]
            return " ".join([*words, "-F", f"file=@{self.upload[0]}", *fields, url])
        if self.json is None:
            return " ".join([*words, url])
        body = shlex.quote(json.dumps(self.json, ensure_ascii=False))
        return " ".join(words) + f" {url} \\\n  -H 'Content-Type: application/json' -d {body}"


@dataclass
class Recorder:
    """Sends calls to a server and keeps what each got back."""

    http: httpx.Client
    examples: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # shell variable -> the key it holds

    def __call__(self, call: Call) -> dict[str, Any]:
        files = {"file": (call.upload[0], call.upload[1])} if call.upload else None
        headers = {"Authorization": f"Bearer {self.keys[call.key]}"} if call.key else None
        response = self.http.request(call.method, call.path, json=call.json, files=files,
                                     data=dict(call.form) or None, headers=headers)
        media = response.headers.get("content-type", "").split(";")[0]
        answered: dict[str, Any] = {"status": response.status_code, "content_type": media}
        if media == "application/json":
            answered["json"] = response.json()
        else:
            answered["text"] = response.text
        if response.status_code != call.expect:
            raise AssertionError(f"{call.route} ({call.title}): expected {call.expect}, got "
                                 f"{response.status_code}: {response.text[:500]}")
        example = {"route": call.route, "title": call.title, "curl": call.curl(),
                   "request": {"method": call.method, "path": call.path, "json": call.json,
                               "upload": call.upload[0] if call.upload else None,
                               **({"form": dict(call.form)} if call.form else {}),
                               **({"key": f"${call.key}"} if call.key else {})},
                   "response": answered}
        self.examples.append(example)
        return answered

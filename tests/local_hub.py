"""A local server speaking the part of the Hugging Face hub's protocol that huggingface-hub uses to resolve
and download a repo's files (revision info, file tree, resolve with ETag and commit headers, the error
codes it maps to its exceptions). Tests of `grm pull`, model aliases, `--model hf://...` and `grm eval
--benchmark hf://datasets/...` run huggingface-hub itself against it: only the network end is local."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import unquote, urlparse


@contextmanager
def serve_repo(repo: str, files: dict[str, bytes], commit: str, *, kind: str = "models") -> Iterator[tuple[str, list[str]]]:
    """Serve `files` (repo path -> bytes) as the hub repo `repo` of `kind` ("models" or "datasets") at
    `commit`; yields (endpoint, the repo paths of every file GET, in order)."""
    if kind not in ("models", "datasets"):
        raise ValueError(f"kind {kind!r}: expected models or datasets")
    resolve = f"/{repo}/resolve/" if kind == "models" else f"/datasets/{repo}/resolve/"
    api = f"/api/{kind}/{repo}/"
    gets: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _route(self, head: bool) -> None:
            path = unquote(urlparse(self.path).path)
            json_type = {"Content-Type": "application/json"}
            if path.startswith(api + "revision/"):
                info = {"id": repo, "sha": commit, "siblings": [{"rfilename": f} for f in files]}
                return self._send(200, json.dumps(info).encode(), json_type, head)
            if path.startswith(api + "tree/"):
                tree = [{"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()} for f, b in files.items()]
                return self._send(200, json.dumps(tree).encode(), json_type, head)
            if path.startswith(resolve):
                name = path[len(resolve):].split("/", 1)[1]  # after the revision
                if name not in files:
                    return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, head)
                if not head:
                    gets.append(name)
                return self._send(200, files[name], {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(files[name]).hexdigest()}"'}, head)
            return self._send(404, b"", {"X-Error-Code": "RepoNotFound"}, head)

        def do_HEAD(self) -> None:
            self._route(True)

        def do_GET(self) -> None:
            self._route(False)

        def log_message(self, *args) -> None:  # keep the test output clean
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", gets
    finally:
        server.shutdown()

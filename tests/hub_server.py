"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1: serves model folders the way the Hub resolves files.

``GET|HEAD /<org>/<name>/resolve/<revision>/<file>`` answers with the file and the headers the
huggingface_hub client reads (X-Repo-Commit, ETag, Content-Length); unknown repos/files give 404 with
the Hub's error-code header.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_server(repos: dict[str, tuple[Path, dict[str, str]]]) -> tuple[ThreadingHTTPServer, list[str]]:
    """``repos``: repo id -> (folder, {revision: commit sha}). Returns the server and its request log."""
    log: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # noqa: ANN002, ANN202
            pass

        def _resolve(self):  # noqa: ANN202
            parts = self.path.split("?")[0].strip("/").split("/")
            log.append(f"{self.command} {self.path}")
            if len(parts) < 5 or parts[2] != "resolve":
                return None, None, "RepoNotFound"
            repo, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            if repo not in repos:
                return None, None, "RepoNotFound"
            folder, revisions = repos[repo]
            commit = revisions.get(revision, revision if revision in revisions.values() else None)
            if commit is None:
                return None, None, "RevisionNotFound"
            path = folder / filename
            if not path.is_file():
                return None, commit, "EntryNotFound"
            return path, commit, None

        def _answer(self, body: bool) -> None:
            path, commit, error = self._resolve()
            if error:
                self.send_response(404)
                self.send_header("X-Error-Code", error)
                if commit:
                    self.send_header("X-Repo-Commit", commit)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_HEAD(self):  # noqa: N802, ANN202
            self._answer(body=False)

        def do_GET(self):  # noqa: N802, ANN202
            self._answer(body=True)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, log

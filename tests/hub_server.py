"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1: serves model folders the way the Hub resolves files.

``GET|HEAD /<org>/<name>/resolve/<revision>/<file>`` answers with the file and the headers the
huggingface_hub client reads (X-Repo-Commit, ETag, Content-Length); unknown repos/files give 404 with
the Hub's error-code header.

With ``upload_root`` it also accepts uploads as the Hub API does for small files: ``POST /api/repos/create``,
``POST /api/models/<repo>/preupload/<revision>`` (every file "regular", no LFS) and
``POST /api/models/<repo>/commit/<revision>`` (NDJSON with base64 files); pushed files are then served.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_server(
    repos: dict[str, tuple[Path, dict[str, str]]], upload_root: Path | None = None
) -> tuple[ThreadingHTTPServer, list[str]]:
    """``repos``: repo id -> (folder, {revision: commit sha}). Returns the server and its request log."""
    log: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _resolve(self):
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

        def _json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            log.append(f"POST {self.path}")
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            path = self.path.split("?")[0].strip("/").split("/")
            host = f"http://{self.headers.get('Host')}"
            if path[:2] == ["api", "validate-yaml"]:  # the client checks a README's metadata before a commit
                return self._json(200, {"errors": [], "warnings": []})
            if upload_root is None or not self.headers.get("Authorization"):
                return self._json(401, {"error": "uploads need a token"})
            if path[:3] == ["api", "repos", "create"]:
                req = json.loads(body)
                # a bare name goes to the token owner's namespace, here always "me"
                repo = f"{req['organization'] or 'me'}/{req['name']}"
                if repo in repos:
                    return self._json(
                        409, {"error": "You already created this model repo", "url": f"{host}/{repo}"}
                    )
                folder = upload_root / repo.replace("/", "--")
                folder.mkdir(parents=True, exist_ok=True)
                repos[repo] = (folder, {})
                return self._json(200, {"url": f"{host}/{repo}", "name": repo})
            if len(path) >= 6 and path[:2] == ["api", "models"] and path[4] in ("preupload", "commit"):
                repo, revision = f"{path[2]}/{path[3]}", "/".join(path[5:])
                if repo not in repos:
                    return self._json(404, {"error": "Repository not found"})
                if path[4] == "preupload":
                    files = json.loads(body)["files"]
                    return self._json(
                        200,
                        {
                            "files": [
                                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                for f in files
                            ]
                        },
                    )
                folder, revisions = repos[repo]
                for line in body.splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        target = folder / item["value"]["path"]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(base64.b64decode(item["value"]["content"]))
                commit = hashlib.sha1(body).hexdigest()
                revisions[revision] = commit
                return self._json(
                    200,
                    {
                        "commitUrl": f"{host}/{repo}/commit/{commit}",
                        "commitOid": commit,
                        "pullRequestUrl": None,
                    },
                )
            return self._json(404, {"error": f"not implemented here: {self.path}"})

        def do_HEAD(self):
            self._answer(body=False)

        def do_GET(self):
            self._answer(body=True)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, log

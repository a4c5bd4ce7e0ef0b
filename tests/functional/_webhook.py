"""A local alert-webhook receiver for functional tests: a real HTTP server on loopback
collecting the JSON bodies poolkeeper POSTs."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Hook:
    """A local webhook receiver collecting the POSTed bodies, as sent and parsed."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.posts: list[dict[str, Any]] = []
        bodies, posts = self.bodies, self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                bodies.append(body)
                posts.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def events(self) -> list[tuple[str, str, str]]:
        return [
            (e["event"], e["target"], e["message"].split(":")[0])
            for post in self.posts
            for e in post["events"]
        ]

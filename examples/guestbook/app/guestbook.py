"""A tiny guestbook: GET / lists the entries kept in redis, POST / adds one."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

STORE = redis.Redis(
    host=os.environ["REDIS_HOST"],
    port=int(os.environ.get("REDIS_PORT", "6379")),
    socket_timeout=2,
    decode_responses=True,
)
TITLE = os.environ.get("GUESTBOOK_TITLE", "guestbook")


class Handler(BaseHTTPRequestHandler):
    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        try:
            if self.path == "/healthz":
                self._send(200, {"redis": STORE.ping()})
            else:
                self._send(200, {"title": TITLE, "entries": STORE.lrange("entries", 0, -1)})
        except redis.RedisError as err:
            self._send(503, {"error": str(err)})

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), 4096)
        entry = self.rfile.read(length).decode("utf-8", "replace").strip()
        try:
            self._send(201, {"entries": STORE.rpush("entries", entry)})
        except redis.RedisError as err:
            self._send(503, {"error": str(err)})

    def log_message(self, format: str, *args: object) -> None:
        print(self.address_string(), format % args, flush=True)


ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()  # noqa: S104 -- its own network

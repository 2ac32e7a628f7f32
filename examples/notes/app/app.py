"""Notes over HTTP, kept in PostgreSQL: POST / adds one (the body), GET / lists them.

A note is acknowledged (201) only once PostgreSQL has committed it, so an
acknowledged note must survive anything that happens to the database's
container afterwards.
"""

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

HOST = os.environ.get("DATABASE_HOST", "db")


def connect():
    conn = psycopg2.connect(host=HOST, user="postgres", dbname="postgres", connect_timeout=3)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL)")
    return conn


class Notes(BaseHTTPRequestHandler):
    def _db(self):
        try:
            conn = connect()
        except psycopg2.Error:
            self._send(503, {"error": "database unavailable"})
            return None
        return conn

    def do_GET(self):
        conn = self._db()
        if conn is None:
            return
        with conn, conn.cursor() as cur:
            if self.path == "/health":
                cur.execute("SELECT 1")
                self._send(200, {"ok": True})
                return
            cur.execute("SELECT body FROM notes ORDER BY id")
            self._send(200, [row[0] for row in cur.fetchall()])
        conn.close()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        conn = self._db()
        if conn is None:
            return
        with conn.cursor() as cur:
            cur.execute("INSERT INTO notes (body) VALUES (%s)", (body,))
        conn.close()
        self._send(201, {"added": body})

    def _send(self, code, doc):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    while True:  # the database may still be starting: wait for it, never exit
        try:
            connect().close()
            break
        except psycopg2.Error:
            time.sleep(0.5)
    ThreadingHTTPServer(("0.0.0.0", 8000), Notes).serve_forever()  # noqa: S104 -- a container

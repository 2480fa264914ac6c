"""A small HTTP JSON service: the standard library's http.server plus PyYAML's C loader.

The config is read once from /read/config.yaml (or the path in $PYAPP_CONFIG) with
yaml.CSafeLoader, the loader backed by libyaml through PyYAML's native extension; a build without
it fails at start rather than silently falling back to the pure-Python loader.
"""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

DEFAULT_CONFIG = "/read/config.yaml"


def load_config(path: str) -> dict:
    with open(path, "rb") as f:
        config = yaml.load(f, Loader=yaml.CSafeLoader)
    if not isinstance(config, dict):
        raise SystemExit(f"pyapp: error: {path}: expected a mapping at the top level")
    return config


def make_handler(config: dict):
    document = {
        "greeting": config.get("greeting", "hello"),
        "items": config.get("items", []),
        "loader": yaml.CSafeLoader.__name__,
        "python": "%d.%d" % sys.version_info[:2],
    }
    body = json.dumps(document, sort_keys=True).encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "pyapp/1"

        def do_GET(self) -> None:
            if self.path == "/":
                self._send(200, body)
            elif self.path == "/healthz":
                self._send(200, b'{"ok": true}')
            else:
                self._send(404, b'{"error": "not found"}')

        def _send(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args) -> None:
            sys.stderr.write("pyapp: %s\n" % (format % args))

    return Handler


def main() -> None:
    path = os.environ.get("PYAPP_CONFIG", DEFAULT_CONFIG)
    config = load_config(path)
    server = ThreadingHTTPServer((config.get("listen", "127.0.0.1"), int(config.get("port", 8080))), make_handler(config))
    # PID 1 of its container: without a handler SIGTERM would be ignored.
    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"pyapp: serving on {server.server_address[0]}:{server.server_address[1]}", file=sys.stderr, flush=True)
    server.serve_forever()
    server.server_close()
    print("pyapp: stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()

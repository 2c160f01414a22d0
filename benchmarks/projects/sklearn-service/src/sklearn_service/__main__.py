"""`sklearn-service`: print one prediction, or serve predictions over HTTP with `--serve PORT`.

POST a JSON list of rows (four measurements each) to `/predict`; the answer is the list of species.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sklearn_service import __version__, predict

SAMPLE = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if self.path != "/predict":
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            rows = json.loads(self.rfile.read(min(length, 1 << 20)))
            body = json.dumps(predict(rows)).encode()
        except (ValueError, TypeError) as e:
            self.send_error(400, str(e))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sklearn-service")
    parser.add_argument("--serve", type=int, metavar="PORT", help="serve POST /predict on this port")
    args = parser.parse_args(argv)
    if args.serve is None:
        print(json.dumps({"sklearn-service": __version__, "sample": predict(SAMPLE)}, sort_keys=True))
        return 0
    print(f"sklearn-service {__version__} on port {args.serve}", flush=True)
    ThreadingHTTPServer(("", args.serve), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

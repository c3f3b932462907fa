"""A webhook receiver for the tests, verifying with the third-party `standardwebhooks`.

    webhook_receiver.py serve SECRET FAIL_FIRST
        Listens on 127.0.0.1 (a free port), prints `PORT <n>`, then one line per request:
        `OK <json>` for a delivery that verifies (answered 204), `BAD <reason>` for one that
        does not (answered 400). The first FAIL_FIRST requests are answered 503 without
        looking at them (`DOWN`), as a receiver that is down for a while.

    webhook_receiver.py sign SECRET MSG_ID TIMESTAMP
        Reads a body on stdin and prints its `webhook-signature`, as a third party signs.
"""

import datetime
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


def serve(secret, fail_first):
    webhook = Webhook(secret)
    state = {"seen": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state["seen"] += 1
            if state["seen"] <= fail_first:
                self.answer(503, b"down for maintenance")
                print("DOWN", flush=True)
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                payload = webhook.verify(body, headers)
            except Exception as e:  # the verifier's own error types
                self.answer(400, str(e).encode())
                print("BAD", type(e).__name__, e, flush=True)
                return
            self.answer(204, b"")
            line = {"id": headers["webhook-id"], "payload": payload}
            print("OK", json.dumps(line), flush=True)

        def answer(self, status, body):
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()


def sign(secret, msg_id, timestamp):
    body = sys.stdin.buffer.read().decode()
    at = datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.timezone.utc)
    print(Webhook(secret).sign(msg_id, at, body))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        sign(sys.argv[2], sys.argv[3], sys.argv[4])

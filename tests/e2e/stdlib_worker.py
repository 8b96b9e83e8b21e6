"""A worker written from docs/worker-contract.md alone: standard library only, no taskworker.

It serves one task type, ``upper`` (params ``{"text": str}``, result ``{"text": TEXT}``),
signs and checks every request as the contract says, registers, heartbeats, and reports the
result of each attempt through ``POST /v1/reports``. Run it as
``python stdlib_worker.py PORT SCHEDULER_URL SECRET``.
"""

import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT, SCHEDULER, SECRET = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]
NAME = f"stdlib-{PORT}"
TYPES = {
    "upper": {
        "params_schema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
        "blocking": True,
    }
}
tasks = {}  # task_id -> {"attempt", "state", "params"}


def signature(method, target, body, timestamp, worker):
    canonical = "\n".join([method, target, timestamp, worker, hashlib.sha256(body).hexdigest()])
    return hmac.new(SECRET.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def send(method, path, payload):
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Task-Timestamp": stamp,
        "X-Task-Worker": NAME,
        "X-Task-Signature": signature(method, path, body, stamp, NAME),
    }
    request = urllib.request.Request(SCHEDULER + path, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def work(task_id, attempt, params):
    report = {
        "kind": "notify",
        "task_type": "upper",
        "task_id": task_id,
        "attempt": attempt,
        "success": True,
        "result": {"text": params["text"].upper()},
    }
    tasks[task_id]["state"] = "success"
    send("POST", "/v1/reports", {"reports": [report]})


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def verified(self, body):
        stamp = self.headers.get("X-Task-Timestamp", "0")
        expected = signature(
            self.command, self.path, body, stamp, self.headers.get("X-Task-Worker", "")
        )
        fresh = abs(time.time() - int(stamp)) <= 60
        return fresh and hmac.compare_digest(expected, self.headers.get("X-Task-Signature", ""))

    def view(self, task_id):
        task = tasks[task_id]
        return {
            "task_id": task_id,
            "task_type": "upper",
            "task_status": task["state"],
            "attempt": task["attempt"],
            "outcome": None,
        }

    def handle_request(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        if url.path == "/health":
            return self.answer(200, {"name": NAME})
        if not self.verified(body):
            return self.answer(401, {"title": "Unauthorized", "description": "bad signature"})
        if url.path != "/v1/task/upper":
            return self.answer(404, {"title": "Not found", "description": url.path})
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self.command == "POST":
            data = json.loads(body)
            task_id, attempt = data["dispatch"]["task_id"], data["dispatch"]["attempt"]
            tasks[task_id] = {"attempt": attempt, "state": "create", "params": data["params"]}
            return self.answer(201, self.view(task_id))
        task_id = int(query["task_id"])
        task = tasks.get(task_id)
        if task is None:
            return self.answer(404, {"title": "Not found", "description": str(task_id)})
        if int(query.get("attempt", task["attempt"])) < task["attempt"]:
            return self.answer(409, {"title": "Stale attempt", "description": str(task_id)})
        action = query.get("action")
        if self.command == "PUT" and action == "prepare":
            task["state"] = "prepare"
        elif self.command == "PUT" and action == "running":
            task["state"] = "running"
            threading.Thread(target=work, args=(task_id, task["attempt"], task["params"])).start()
        elif self.command == "PUT" and action in ("cancel", "clean"):
            task["state"] = "finish"
        return self.answer(200, self.view(task_id))

    do_GET = do_POST = do_PUT = handle_request

    def log_message(self, *args):
        return


def heartbeat():
    while True:
        running = sum(t["state"] == "running" for t in tasks.values())
        send("PUT", f"/v1/workers/{NAME}/heartbeat", {"running": running})
        time.sleep(2)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    send(
        "POST",
        "/v1/workers",
        {"name": NAME, "url": f"http://127.0.0.1:{PORT}", "capacity": 4, "task_types": TYPES},
    )
    threading.Thread(target=heartbeat, daemon=True).start()
    server.serve_forever()

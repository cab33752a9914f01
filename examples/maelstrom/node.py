"""A minimal Maelstrom node library for the examples: JSON messages on stdin/stdout.

Standard library only. A node registers handlers by message type. Handlers run on the thread
that reads stdin, one message after the other, except those registered with `blocking=True`:
each of their messages runs on a thread of its own, so they may call `rpc` (which blocks until
the reply or a timeout) without stopping the node from reading its input. (Few threads also
keep CPython fast under libfaketime, the harness's clock fault: the interpreter's lock handoffs
between threads are timed waits, which the faked clock slows down.) Replies to this node's own requests are
matched by `in_reply_to`.
"""

import json
import sys
import threading


def sleep(seconds):
    """time.sleep fails with EINVAL under libfaketime (the clock fault); an Event's wait does not."""
    threading.Event().wait(seconds)


class Node:
    def __init__(self):
        self.node_id = None
        self.node_ids = []
        self.handlers = {}
        self.inits = []
        self._out = threading.Lock()
        self._ids = threading.Lock()
        self._next_id = 0
        self._waiting = {}

    def on(self, kind, fn, blocking=False):
        self.handlers[kind] = (fn, blocking)

    def on_init(self, fn):
        self.inits.append(fn)

    def log(self, *words):
        print(*words, file=sys.stderr, flush=True)

    def send(self, dest, body):
        line = json.dumps({"src": self.node_id, "dest": dest, "body": body})
        with self._out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def reply(self, req, body):
        body = dict(body)
        body["in_reply_to"] = req["body"].get("msg_id")
        self.send(req["src"], body)

    def new_id(self):
        with self._ids:
            self._next_id += 1
            return self._next_id

    def rpc(self, dest, body, timeout=1.0):
        """Sends a request and waits for its reply body; None on timeout."""
        body = dict(body)
        body["msg_id"] = self.new_id()
        done = threading.Event()
        slot = {"event": done, "reply": None}
        with self._ids:
            self._waiting[body["msg_id"]] = slot
        self.send(dest, body)
        done.wait(timeout)
        with self._ids:
            self._waiting.pop(body["msg_id"], None)
        return slot["reply"]

    def run(self):
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            msg = json.loads(line)
            body = msg["body"]
            reply_to = body.get("in_reply_to")
            if reply_to is not None:
                with self._ids:
                    slot = self._waiting.get(reply_to)
                if slot is not None:
                    slot["reply"] = body
                    slot["event"].set()
                continue
            kind = body.get("type")
            if kind == "init":
                self.node_id = body["node_id"]
                self.node_ids = body["node_ids"]
                for fn in self.inits:
                    fn()
                self.reply(msg, {"type": "init_ok"})
                continue
            handler = self.handlers.get(kind)
            if handler is None:
                self.reply(msg, {"type": "error", "code": 10, "text": "unsupported: %s" % kind})
                continue
            fn, blocking = handler
            if blocking:
                threading.Thread(target=self._handle, args=(fn, msg), daemon=True).start()
            else:
                self._handle(fn, msg)

    def _handle(self, fn, msg):
        try:
            fn(msg)
        except Exception as e:  # an indefinite error: the request may or may not have happened
            self.log("handler failed:", repr(e))
            self.reply(msg, {"type": "error", "code": 13, "text": repr(e)})

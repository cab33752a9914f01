#!/usr/bin/env python3
"""BROKEN on purpose: writes and cas go to `lin-kv`, but reads are served from a local cache of
what this node itself wrote, so a node never sees the writes of the others (stale reads; the
linearizability checker catches it, faults or not)."""
import threading

from node import Node

node = Node()
cache = {}
lock = threading.Lock()


def update(m):
    body = {k: v for k, v in m["body"].items() if k != "msg_id"}
    r = node.rpc("lin-kv", body, timeout=1.0)
    if r is None:
        node.reply(m, {"type": "error", "code": 0, "text": "lin-kv did not answer"})
        return
    if r["type"] in ("write_ok", "cas_ok"):
        with lock:
            cache[str(body["key"])] = body["value"] if body["type"] == "write" else body["to"]
    node.reply(m, {k: v for k, v in r.items() if k not in ("in_reply_to", "msg_id")})


def read(m):
    with lock:
        v = cache.get(str(m["body"]["key"]))
    if v is None:
        node.reply(m, {"type": "error", "code": 20, "text": "not in my cache"})
    else:
        node.reply(m, {"type": "read_ok", "value": v})


node.on("write", update, blocking=True)
node.on("cas", update, blocking=True)
node.on("read", read)
node.run()

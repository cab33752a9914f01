#!/usr/bin/env python3
"""A linearizable key-value store: every read, write and cas goes to the `lin-kv` service, and
its answer (or error) goes back to the client."""
from node import Node

node = Node()


def proxy(m):
    body = {k: v for k, v in m["body"].items() if k != "msg_id"}
    r = node.rpc("lin-kv", body, timeout=1.0)
    if r is None:
        node.reply(m, {"type": "error", "code": 0, "text": "lin-kv did not answer"})
        return
    r = {k: v for k, v in r.items() if k not in ("in_reply_to", "msg_id")}
    node.reply(m, r)


for kind in ("read", "write", "cas"):
    node.on(kind, proxy, blocking=True)
node.run()

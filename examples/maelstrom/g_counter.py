#!/usr/bin/env python3
"""A grow-only counter on the `seq-kv` service: each node keeps its own total under its own key
(only it writes that key, so its own reads of it are never stale), adds with compare-and-set,
and reads by first writing a key of its own (which brings its view of seq-kv up to date) and
then summing every node's key. Nothing lives only in memory, so it survives kills too."""
import random

from node import Node

node = Node()


def kv(body):
    r = node.rpc("seq-kv", body, timeout=1.0)
    if r is None:
        raise TimeoutError("seq-kv did not answer")
    return r


def read_key(key):
    r = kv({"type": "read", "key": key})
    if r["type"] == "read_ok":
        return r["value"]
    if r.get("code") == 20:
        return 0
    raise RuntimeError("seq-kv read failed: %r" % r)


def add(m):
    delta = m["body"]["delta"]
    while True:
        cur = read_key(node.node_id)
        r = kv({"type": "cas", "key": node.node_id, "from": cur, "to": cur + delta, "create_if_not_exists": True})
        if r["type"] == "cas_ok":
            break
        if r.get("code") not in (20, 22):
            raise RuntimeError("seq-kv cas failed: %r" % r)
        if r.get("code") == 20 and cur != 0:
            raise RuntimeError("key vanished")
    node.reply(m, {"type": "add_ok"})


def read(m):
    kv({"type": "write", "key": "sync-" + node.node_id, "value": random.getrandbits(48)})
    total = sum(read_key(n) for n in node.node_ids)
    node.reply(m, {"type": "read_ok", "value": total})


node.on("add", add, blocking=True)
node.on("read", read, blocking=True)
node.run()

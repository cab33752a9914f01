#!/usr/bin/env python3
"""BROKEN on purpose: each broadcast is sent once to every other node and never again, so a
message sent while a partition drops it is lost for good (caught under `--nemesis partition`)."""
import threading

from node import Node

node = Node()
lock = threading.Lock()
messages = set()


def broadcast(m):
    msg = m["body"]["message"]
    with lock:
        messages.add(msg)
    for n in node.node_ids:
        if n != node.node_id:
            node.send(n, {"type": "gossip", "message": msg})
    node.reply(m, {"type": "broadcast_ok"})


def gossip(m):
    with lock:
        messages.add(m["body"]["message"])


def read(m):
    with lock:
        now = sorted(messages)
    node.reply(m, {"type": "read_ok", "messages": now})


node.on("topology", lambda m: node.reply(m, {"type": "topology_ok"}))
node.on("broadcast", broadcast)
node.on("gossip", gossip)
node.on("read", read)
node.run()

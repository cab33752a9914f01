#!/usr/bin/env python3
"""Broadcast with gossip and retries. Every 100 ms each node sends each neighbour the messages
it has no acknowledgement for; the neighbour acknowledges what it got. Dropped messages are sent
again until acknowledged, so every message reaches every node once partitions heal."""
import threading
from node import Node, sleep

node = Node()
lock = threading.Lock()
messages = set()
neighbours = []
known = {}  # neighbour -> messages it is known to have


def topology(m):
    with lock:
        neighbours[:] = m["body"]["topology"].get(node.node_id, [])
        for n in neighbours:
            known.setdefault(n, set())
    node.reply(m, {"type": "topology_ok"})


def broadcast(m):
    with lock:
        messages.add(m["body"]["message"])
    node.reply(m, {"type": "broadcast_ok"})


def read(m):
    with lock:
        now = sorted(messages)
    node.reply(m, {"type": "read_ok", "messages": now})


def gossip(m):
    got = m["body"]["messages"]
    with lock:
        messages.update(got)
        known.setdefault(m["src"], set()).update(got)
    node.send(m["src"], {"type": "gossip_ok", "messages": got})


def gossip_ok(m):
    with lock:
        known.setdefault(m["src"], set()).update(m["body"]["messages"])


def gossiper():
    while True:
        sleep(0.1)
        with lock:
            todo = [(n, sorted(messages - known.get(n, set()))) for n in neighbours]
        for n, missing in todo:
            if missing:
                node.send(n, {"type": "gossip", "messages": missing[:500]})


node.on("topology", topology)
node.on("broadcast", broadcast)
node.on("read", read)
node.on("gossip", gossip)
node.on("gossip_ok", gossip_ok)
threading.Thread(target=gossiper, daemon=True).start()
node.run()

#!/usr/bin/env python3
"""A grow-only set: each node sends its whole set to every other node every 200 ms (state-based
anti-entropy), so every element reaches every node once partitions heal."""
import threading

from node import Node, sleep

node = Node()
lock = threading.Lock()
elements = set()


def add(m):
    with lock:
        elements.add(m["body"]["element"])
    node.reply(m, {"type": "add_ok"})


def read(m):
    with lock:
        now = sorted(elements)
    node.reply(m, {"type": "read_ok", "value": now})


def merge(m):
    with lock:
        elements.update(m["body"]["value"])


def gossiper():
    while True:
        sleep(0.2)
        with lock:
            now = sorted(elements)
        for n in node.node_ids:
            if n != node.node_id and now:
                node.send(n, {"type": "merge", "value": now})


node.on("add", add)
node.on("read", read)
node.on("merge", merge)
threading.Thread(target=gossiper, daemon=True).start()
node.run()

#!/usr/bin/env python3
"""Unique ids that survive a crash with amnesia: node id, a random per-process part, a counter."""
import itertools
import threading
import uuid

from node import Node

node = Node()
incarnation = uuid.uuid4().hex[:12]
counter = itertools.count(1)
lock = threading.Lock()


def generate(m):
    with lock:
        n = next(counter)
    node.reply(m, {"type": "generate_ok", "id": "%s-%s-%d" % (node.node_id, incarnation, n)})


node.on("generate", generate)
node.run()

#!/usr/bin/env python3
"""BROKEN on purpose: ids are node id and a counter that starts at zero in every process, so
a node that is killed and restarted hands out its old ids again (caught under `--nemesis kill`)."""
import itertools
import threading

from node import Node

node = Node()
counter = itertools.count(1)
lock = threading.Lock()


def generate(m):
    with lock:
        n = next(counter)
    node.reply(m, {"type": "generate_ok", "id": "%s-%d" % (node.node_id, n)})


node.on("generate", generate)
node.run()

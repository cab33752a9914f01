#!/usr/bin/env python3
"""BROKEN on purpose: an echo node that prints a debugging line to stdout (which is the
network) instead of stderr. The harness reports the node and the line."""
import sys

from node import Node

node = Node()


def echo(m):
    if m["body"]["msg_id"] == 3:
        print("DEBUG: got my third echo", flush=True)
    node.reply(m, {"type": "echo_ok", "echo": m["body"]["echo"]})


node.on("echo", echo)
node.run()

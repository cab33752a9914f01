#!/usr/bin/env python3
"""Small misbehaving node binaries for the trust tests (Python standard library only).

Invoked as `fake_node.py MODE <node-contract arguments>` through one-line wrapper scripts, one
per mode. Every mode speaks enough of the node contract to be launched by `faultline test`:
`--list` prints the protocol `fake`; `fake --describe` claims linearizability for the register
workload. The correct behaviour (mode `ok`) is a key-value register that every node keeps in one
file next to the nodes' data directories, under an exclusive lock, so a cluster of them is
linearizable by construction; the other modes break one thing each:

  silent        accepts connections, never answers
  garbage       answers every request with a line that is not JSON
  exit-at-start exits with status 3 before listening
  never-listen  runs but never listens
  no-restart    refuses to start a second time from the same data directory
  die-mid-run   node n2 exits by itself (status 7) 2 s after its first start
  list-bg       `--list` leaves a background child holding stdout open
  list-big      `--list` prints more than 64 KiB
"""
import fcntl
import json
import os
import socket
import subprocess
import sys
import threading
import time


def describe():
    print(json.dumps({"protocol": "fake", "claims": ["linearizable"], "workloads": ["register"]}))


def parse(argv):
    opts = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            opts[a[2:]] = argv[i + 1]
            i += 2
        else:
            opts[a[2:]] = True
            i += 1
    return opts


def store_path(data_dir):
    # <run>/nodes/<id>/data -> <run>/nodes/fake-store.json, shared by every node of the run.
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(data_dir))), "fake-store.json")


def apply(path, req):
    with open(path + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path) as f:
                kv = json.load(f)
        except (OSError, ValueError):
            kv = {}
        key = str(req.get("key"))
        t = req.get("type")
        reply = {"in_reply_to": req.get("msg_id")}
        if t == "read":
            if key in kv:
                reply.update(type="read_ok", value=kv[key])
            else:
                reply.update(type="error", code=20, text="no such key")
        elif t == "write":
            kv[key] = req.get("value")
            reply.update(type="write_ok")
        elif t == "cas":
            if key not in kv:
                reply.update(type="error", code=20, text="no such key")
            elif kv[key] != req.get("from"):
                reply.update(type="error", code=22, text="precondition failed")
            else:
                kv[key] = req.get("to")
                reply.update(type="cas_ok")
        elif t == "status":
            reply.update(type="status_ok")
        else:
            reply.update(type="error", code=10, text="not supported")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(kv, f)
        os.replace(tmp, path)
        return reply


def serve_conn(conn, mode, path):
    f = conn.makefile("rwb")
    for line in f:
        if mode == "silent":
            continue
        if mode == "garbage":
            f.write(b"this is not json\n")
            f.flush()
            continue
        try:
            req = json.loads(line)
        except ValueError:
            continue
        if req.get("type") == "peer_hello":
            return
        f.write((json.dumps(apply(path, req)) + "\n").encode())
        f.flush()


def run(mode, opts):
    data_dir = opts["data-dir"]
    os.makedirs(data_dir, exist_ok=True)
    marker = os.path.join(data_dir, "started")
    first_life = not os.path.exists(marker)
    if mode == "exit-at-start":
        print("fake node: exiting at start-up", file=sys.stderr)
        sys.exit(3)
    if mode == "no-restart" and not first_life:
        print("fake node: cannot recover from my data directory", file=sys.stderr)
        sys.exit(1)
    open(marker, "a").close()
    if mode == "never-listen":
        while True:
            time.sleep(1)
    if mode == "die-mid-run" and opts.get("id") == "n2" and first_life:
        def die():
            time.sleep(2)
            print("fake node: assertion failed, exiting", file=sys.stderr, flush=True)
            os._exit(7)
        threading.Thread(target=die, daemon=True).start()
    host, port = opts["listen"].rsplit(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(64)
    path = store_path(data_dir)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve_conn, args=(conn, mode, path), daemon=True).start()


def main():
    mode, argv = sys.argv[1], sys.argv[2:]
    if argv[:1] == ["--list"]:
        if mode == "list-bg":
            subprocess.Popen(["sleep", "30"])  # inherits stdout and holds it open
        if mode == "list-big":
            print("\n".join("# padding line %05d ................................" % i for i in range(2000)))
        print("fake", flush=True)
        return
    if argv[:1] != ["fake"]:
        print("unknown protocol", file=sys.stderr)
        sys.exit(254)
    if "--describe" in argv:
        describe()
        return
    run(mode, parse(argv[1:]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Load for bench/run: real sockets held by real processes, until SIGTERM. Bench-only.

    load.py conns --conns N --servers S --clients C --port P --ready FILE
        Run INSIDE a network namespace (bench/run starts it under `nsenter --net=`). The main
        process listens on 127.0.0.1:P; S forked server processes accept the N connections
        (a share each, as an Envoy's workers) that C forked client processes open, each from
        its own source address 127.0.0.(10+i) so that ephemeral ports never run out. Every
        connection is two ESTABLISHED sockets: 2N + 1 TCP sockets in the namespace, and no
        process holds more than N/min(S,C) of them (RLIMIT_NOFILE's hard limit may be low).

    load.py idle --procs K --ready FILE
        K plain `sleep infinity` processes, each holding a few fds (a unix socketpair, an unbound
        UDP socket, an unbound TCP socket, a pipe, /dev/null): the rest of a node, which any tool
        that walks every process's fds pays for.

The ready file is JSON: {"pid": ..., "children": [...], "sockets": ...}, written atomically once
everything is held. On SIGTERM every child is killed and reaped, then the process exits 0. No
socket sends a byte, and nothing binds beyond 127.0.0.0/8 inside the namespace it runs in.
"""

import argparse
import ctypes
import json
import os
import resource
import signal
import socket
import subprocess
import sys

PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    """A child killed by SIGKILL with its parent: nothing outlives a crashed bench."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(n, soft)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))


def sysctl(path, value):
    """A per-namespace sysctl of the namespace this process is in; best effort."""
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        print(f"load.py: {path}: {e}", file=sys.stderr)


def write_ready(path, doc):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, path)


def hold(children):
    """Wait for SIGTERM, then kill and reap every child."""
    signal.sigwait({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    sys.exit(0)


def split(total, parts):
    share = [total // parts] * parts
    for i in range(total % parts):
        share[i] += 1
    return share


def fork_holder(name, done_w, work):
    """A child that runs work() (which opens and keeps its sockets), says so on done_w, then
    holds everything until SIGTERM."""
    pid = os.fork()
    if pid != 0:
        return pid
    code = 1
    try:
        die_with_parent()
        held = work()
        os.write(done_w, b"k")
        os.close(done_w)
        signal.sigwait({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
        code = 0 if held is not None else 1
    except BaseException as e:  # noqa: BLE001 - a child must never return into the parent
        print(f"load.py {name}: {e}", file=sys.stderr)
    finally:
        os._exit(code)


def conns(args):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    # Without CAP_SYS_RESOURCE the hard limit stays (often 20000 in containers): no process
    # holds more than a share of the connections, whatever N is.
    raise_nofile(args.conns // min(args.servers, args.clients) + 256)
    # A deep accept queue: a dropped SYN would cost the client a 1 s retransmit.
    sysctl("/proc/sys/net/core/somaxconn", "65535")
    sysctl("/proc/sys/net/ipv4/tcp_max_syn_backlog", "65535")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(65535)
    done_r, done_w = os.pipe()
    children = []

    def server(n):
        def work():
            os.close(done_r)
            return [listener.accept()[0] for _ in range(n)]

        return work

    def client(i, n):
        def work():
            os.close(done_r)
            listener.close()
            src = f"127.0.0.{10 + i}"
            held = []
            for _ in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((src, 0))
                s.connect(("127.0.0.1", args.port))
                held.append(s)
            return held

        return work

    for i, n in enumerate(split(args.conns, args.servers)):
        children.append(fork_holder(f"server {i}", done_w, server(n)))
    for i, n in enumerate(split(args.conns, args.clients)):
        children.append(fork_holder(f"client {i}", done_w, client(i, n)))
    os.close(done_w)
    ok = 0
    while ok < len(children):
        b = os.read(done_r, 64)
        if not b:
            sys.exit("load.py: a server or client failed before holding its share")
        ok += len(b)
    write_ready(
        args.ready,
        {"pid": os.getpid(), "children": children, "sockets": 2 * args.conns + 1},
    )
    hold(children)


def idle(args):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    children = []
    devnull = os.open("/dev/null", os.O_RDWR)
    for _ in range(args.procs):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        r, w = os.pipe()
        keep = [a.fileno(), b.fileno(), u.fileno(), t.fileno(), r, w]
        p = subprocess.Popen(
            ["sleep", "infinity"],
            stdin=devnull,
            stdout=devnull,
            stderr=devnull,
            pass_fds=keep,
            preexec_fn=die_with_parent,
        )
        children.append(p.pid)
        for s in (a, b, u, t):
            s.close()
        os.close(r)
        os.close(w)
    write_ready(
        args.ready, {"pid": os.getpid(), "children": children, "sockets": 4 * args.procs}
    )
    hold(children)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("conns")
    c.add_argument("--conns", type=int, required=True)
    c.add_argument("--servers", type=int, default=4)
    c.add_argument("--clients", type=int, default=4)
    c.add_argument("--port", type=int, default=8080)
    c.add_argument("--ready", required=True)
    i = sub.add_parser("idle")
    i.add_argument("--procs", type=int, required=True)
    i.add_argument("--ready", required=True)
    args = ap.parse_args()
    die_with_parent()
    if args.cmd == "conns":
        conns(args)
    else:
        idle(args)


if __name__ == "__main__":
    main()

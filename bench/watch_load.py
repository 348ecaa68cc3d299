"""Load for `bench/watch-closing`: RATE connections per second for SECONDS to a listener of its
own on 127.0.0.1:PORT, each connected, accepted and closed; the client closes with SO_LINGER 0
(a reset), so no TIME_WAIT piles up and the looks stay small: what is measured is the events.
Prints how many connections it made (each is two sockets destroyed: client and accepted end)."""
import socket, struct, sys, time

rate, secs, port = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(4096)
linger = struct.pack("ii", 1, 0)
made = 0
start = time.monotonic()
end = start + secs
while True:
    now = time.monotonic()
    if now >= end:
        break
    due = int((now - start) * rate) + 1
    while made < due:
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        c.connect(("127.0.0.1", port))
        a, _ = listener.accept()
        c.close()
        a.close()
        made += 1
    time.sleep(0.001)
print(made, round(time.monotonic() - start, 3), flush=True)

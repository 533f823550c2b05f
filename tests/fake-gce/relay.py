#!/usr/bin/env python3
"""QEMU guestfwd `cmd:` helper: joins the guest's connection (stdin/stdout)
to the instance's metadata server on 127.0.0.1:PORT, one process per
connection (a guestfwd chardev would carry only one connection)."""
import os
import socket
import sys
import threading

sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))


def upstream():
    while True:
        data = os.read(0, 65536)
        if not data:
            break
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)


threading.Thread(target=upstream, daemon=True).start()
while True:
    data = sock.recv(65536)
    if not data:
        break
    os.write(1, data)

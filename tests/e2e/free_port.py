"""A free TCP port on 127.0.0.1 for a server a test is about to start.

Not port 0's answer: the kernel hands out ports from the ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range), the same range every outgoing connection of every
other test takes its local port from, so a port found free there can be a client's by the time
the server binds it (seen in CI: "cannot listen on 127.0.0.1:48001 (HTTP): address in use").
This picks at random below that range, where only listeners live, and checks it binds. Run as
a script it prints one port, for shell scripts.
"""

import random
import socket

LOWEST = 10000


def ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    high = ephemeral_low() - 1
    low = LOWEST if high - LOWEST >= 1000 else 1024
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    print(free_port())

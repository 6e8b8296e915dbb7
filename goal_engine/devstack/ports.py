"""Free loopback ports for the processes the dev stack, the benchmarks and the tests start.

The kernel's "port 0" answer is free now, not reserved: once the probing socket is
closed the next probe may get the same port. A broker whose client and controller
listeners were both picked that way refused to start ("two listeners on the same
port"). So a port handed out here is never handed out again by this process.
"""

from __future__ import annotations

import socket
import threading

_handed_out: set[int] = set()
_lock = threading.Lock()


def free_port() -> int:
    """A port nothing listens on now (127.0.0.1), and that this process has not handed out before."""
    with _lock:
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port

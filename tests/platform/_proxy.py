"""A TCP forwarder that can die like a host: :meth:`Proxy.drop` resets every open connection
and refuses new ones (a frontend lost mid-call); :meth:`Proxy.reset` only resets them. TLS
passes through untouched, so a client behind it attests and pins the real server."""

from __future__ import annotations

import socket
import struct
import threading

__all__ = ["Proxy"]


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._dropped = False
        self.accepted = 0
        self.forwarded = 0  # bytes passed on from clients to the target
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed by drop()
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._dropped:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
                self.accepted += 1
            for a, b, outbound in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(a, b, outbound), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, outbound: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if outbound:
                    with self._lock:
                        self.forwarded += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def drop(self) -> None:
        """Reset every connection (RST, as a dead host's kernel answers) and stop listening."""
        with self._lock:
            self._dropped = True
        self._listener.close()
        self.reset()

    def reset(self) -> None:
        """Reset every open connection; new ones are still forwarded (a network blip)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RD)  # wakes the pump blocked in recv; sends nothing
                s.close()  # linger 0: RST
            except OSError:
                pass

    close = drop

"""The frontend service: the client API's authenticate → authorize → forward → audit."""

from ._pipeline import Frontend, peer_ip

__all__ = ["Frontend", "peer_ip"]

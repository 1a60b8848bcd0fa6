"""The authentication service: users, passwords (argon2id) and session tokens."""

from ._service import AuthenticationService
from ._tokens import TokenSigner

__all__ = ["AuthenticationService", "TokenSigner"]

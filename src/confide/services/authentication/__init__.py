"""The authentication service: users, passwords (argon2id) and session tokens."""

from ._service import AuthenticationService
from ._shared_failures import SharedFailures
from ._throttle import LoginThrottle
from ._tokens import TokenSigner

__all__ = ["AuthenticationService", "LoginThrottle", "SharedFailures", "TokenSigner"]

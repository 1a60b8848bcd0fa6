"""The access-control service: Teaclave's casbin role → API policy."""

from ._policy import AccessControl

__all__ = ["AccessControl"]

"""Who is calling: users' roles and their canonical strings (spec §3.1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Principal", "Role", "RoleKind", "parse_role", "role_from_request"]


class RoleKind(StrEnum):
    PLATFORM_ADMIN = "PlatformAdmin"
    FUNCTION_OWNER = "FunctionOwner"
    DATA_OWNER_MANAGER = "DataOwnerManager"
    DATA_OWNER = "DataOwner"
    INVALID = "Invalid"


@dataclass(frozen=True)
class Role:
    kind: RoleKind
    attribute: str = ""

    @property
    def canonical(self) -> str:
        if self.kind in (RoleKind.DATA_OWNER, RoleKind.DATA_OWNER_MANAGER):
            return f"{self.kind.value}-{self.attribute}"
        return self.kind.value

    @property
    def api_role(self) -> str:
        """The subject used by the role → API policy (part before the first ``-``)."""
        return self.kind.value

    @property
    def is_data_owner_like(self) -> bool:
        return self.kind in (RoleKind.DATA_OWNER, RoleKind.DATA_OWNER_MANAGER)

    def debug(self) -> str:
        """Rust debug rendering, used in audit entries (spec §3.8)."""
        if self.is_data_owner_like:
            return f'{self.kind.value}("{self.attribute}")'
        return self.kind.value


def role_from_request(role: str, attribute: str) -> Role | None:
    """The role named in a register/update request, or None if invalid."""
    if role in (RoleKind.PLATFORM_ADMIN.value, RoleKind.FUNCTION_OWNER.value):
        return Role(RoleKind(role))
    if role in (RoleKind.DATA_OWNER.value, RoleKind.DATA_OWNER_MANAGER.value):
        return Role(RoleKind(role), attribute)
    return None


def parse_role(canonical: str) -> Role:
    """Parse a canonical role string; unknown strings are ``Invalid`` (no rights)."""
    if canonical in (RoleKind.PLATFORM_ADMIN.value, RoleKind.FUNCTION_OWNER.value):
        return Role(RoleKind(canonical))
    # DataOwnerManager- must be tested first: "DataOwner-" is not its prefix,
    # but keep the order explicit.
    for kind in (RoleKind.DATA_OWNER_MANAGER, RoleKind.DATA_OWNER):
        prefix = kind.value + "-"
        if canonical.startswith(prefix):
            return Role(kind, canonical[len(prefix) :])
    return Role(RoleKind.INVALID)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the user id and the role stored for it."""

    user_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role.kind is RoleKind.PLATFORM_ADMIN

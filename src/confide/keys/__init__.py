"""Platform keys: the root secret and what derives from it, the platform CA, enrolment.

The first node of a platform creates the :class:`RootSecret`; later nodes
receive it only through enrolment (the key service,
``confide.services.keys.KeyService``, runs its server side), after their
attestation evidence was appraised, encrypted to their attested key (HPKE).
Every error is a :class:`KeysError`.
"""

from confide.keys._enrol import (
    ROOT_SECRET_ROLES,
    EnrolmentChallenge,
    EnrolmentGrant,
    EnrolmentKeys,
    EnrolmentRequest,
    enrolment_report_data,
    grants_root_secret,
    make_enrolment_request,
    open_enrolment_grant,
    seal_root_secret,
)
from confide.keys._errors import EnrolmentError, KeysError, PeerNotAllowedError, SealingError
from confide.keys._keyring import (
    KEY_KINDS,
    KeyRing,
    KeyVersion,
    KindKeys,
    LiveKeys,
    parse_kid,
)
from confide.keys._platform_ca import (
    DEFAULT_INBOUND_POLICY,
    SERVICE_URI_PREFIX,
    InboundPolicy,
    PlatformCA,
    service_dns_name,
    services_of,
)
from confide.keys._roles import (
    INTERNAL_RPC_POLICY,
    NODE_ROLES,
    ROLE_TABLES,
    RoleMeasurements,
    check_rpc,
    is_revoked_id,
)
from confide.keys._root_secret import (
    DERIVATION_LABELS,
    ROOT_SECRET_BYTES,
    RootSecret,
    Sealer,
    SimSealer,
    UnsafeSimSealerWarning,
    load_root_secret,
    store_root_secret,
)

__all__ = [
    "DEFAULT_INBOUND_POLICY",
    "DERIVATION_LABELS",
    "INTERNAL_RPC_POLICY",
    "KEY_KINDS",
    "NODE_ROLES",
    "ROLE_TABLES",
    "ROOT_SECRET_BYTES",
    "ROOT_SECRET_ROLES",
    "SERVICE_URI_PREFIX",
    "EnrolmentChallenge",
    "EnrolmentError",
    "EnrolmentGrant",
    "EnrolmentKeys",
    "EnrolmentRequest",
    "InboundPolicy",
    "KeyRing",
    "KeyVersion",
    "KeysError",
    "KindKeys",
    "LiveKeys",
    "PeerNotAllowedError",
    "PlatformCA",
    "RoleMeasurements",
    "RootSecret",
    "Sealer",
    "SealingError",
    "SimSealer",
    "UnsafeSimSealerWarning",
    "check_rpc",
    "enrolment_report_data",
    "grants_root_secret",
    "is_revoked_id",
    "load_root_secret",
    "make_enrolment_request",
    "open_enrolment_grant",
    "parse_kid",
    "seal_root_secret",
    "service_dns_name",
    "services_of",
    "store_root_secret",
]

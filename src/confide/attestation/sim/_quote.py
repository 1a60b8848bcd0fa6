"""Build SGX v3 / TDX v4 / TDX v5 quotes signed by the sim hierarchy (SIM ONLY).

The layout is the one :mod:`._quote` parses; the QE report binds the
attestation key as REPORTDATA[0:32] = SHA-256(attestation key X||Y || QE auth
data), and the PCK key signs the QE report, as on real hardware. A v5 quote
carries the body descriptor (type 2 = TD report 1.0, 3 = TD report 1.5) and the
attestation key signs header || descriptor || body.
"""

from __future__ import annotations

import hashlib

from ..evidence import (
    CERT_TYPE_PCK_CHAIN,
    CERT_TYPE_QE_REPORT,
    TD_REPORT10_BODY_TYPE,
    TD_REPORT15_BODY_TYPE,
    TEE_TYPE_SGX,
    TEE_TYPE_TDX,
)
from ._pki import CPU_SVN, PCE_SVN, SimPki, raw_ecdsa_sign

__all__ = ["TDX_MODULE_SVN", "TDX_QUOTE_FORMATS", "TEE_TCB_SVN", "build_quote", "qe_identity"]

INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
QE_SVN = 8
TDX_MODULE_SVN = 4
TEE_TCB_SVN = bytes([6, 1, 3] + [0] * 13)  # [0]=module SVN, [1]=module major (TDX_01)
_QE_ATTRIBUTES = bytes.fromhex("11000000000000000000000000000000")
_QE_PROD_ID = {"sgx": 1, "tdx": 2}
_SGX_ATTRIBUTES = bytes.fromhex("0500000000000000e700000000000000")  # INIT|MODE64BIT, no DEBUG
_SGX_DEBUG_FLAG = 0x02
_TD_ATTRIBUTES = bytes.fromhex("0000001000000000")  # SEPT_VE_DISABLE, no DEBUG
_QE_AUTH_DATA = bytes(range(32))
#: The TDX quote formats the sim emits: (quote version, TD report version).
TDX_QUOTE_FORMATS = ((4, "1.0"), (5, "1.0"), (5, "1.5"))


def _u16(v: int) -> bytes:
    return v.to_bytes(2, "little")


def _u32(v: int) -> bytes:
    return v.to_bytes(4, "little")


def _sgx_report(
    cpu_svn: bytes, attributes: bytes, mr_enclave: bytes, mr_signer: bytes,
    isv_prod_id: int, isv_svn: int, report_data: bytes,
) -> bytes:
    out = (cpu_svn + _u32(0) + bytes(28) + attributes + mr_enclave + bytes(32) + mr_signer
           + bytes(96) + _u16(isv_prod_id) + _u16(isv_svn) + bytes(60) + report_data)
    if len(out) != 384:
        raise ValueError("internal: SGX report body size")
    return out


def _qe_mr_signer(pki: SimPki) -> bytes:
    return hashlib.sha256(b"confide-sim-qe:" + pki.certs["pck"].signature).digest()


def qe_identity(pki: SimPki, tee: str) -> dict[str, object]:
    """The QE identity document (without dates) matching :func:`build_quote`'s QE."""
    return {
        "id": "QE" if tee == "sgx" else "TD_QE", "version": 2, "tcbEvaluationDataNumber": 17,
        "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
        "attributes": _QE_ATTRIBUTES.hex().upper(),
        "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner": _qe_mr_signer(pki).hex().upper(), "isvprodid": _QE_PROD_ID[tee],
        "tcbLevels": [{"tcb": {"isvsvn": QE_SVN}, "tcbDate": "2024-03-13T00:00:00Z",
                       "tcbStatus": "UpToDate"}],
    }


def _attestation_key_raw(pki: SimPki) -> bytes:
    pub = pki.keys["attestation"].public_key()
    nums = pub.public_numbers()
    return nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")


def _td_body(measurement: bytes, report_data: bytes, debug: bool, td_report: str,
             rtmrs: bytes, mr_servicetd: bytes) -> bytes:
    if len(measurement) != 48:
        raise ValueError("MRTD must be 48 bytes")
    if len(rtmrs) != 4 * 48 or len(mr_servicetd) != 48:
        raise ValueError("RTMRs must be 4 x 48 bytes and MRSERVICETD 48 bytes")
    td_attrs = bytearray(_TD_ATTRIBUTES)
    if debug:
        td_attrs[0] |= 0x01
    body = (TEE_TCB_SVN + bytes(48) + bytes(48) + bytes(8) + bytes(td_attrs)
            + bytes.fromhex("e702060000000000") + measurement + bytes(48 * 3)
            + rtmrs + report_data)
    if td_report == "1.5":
        body += TEE_TCB_SVN + mr_servicetd  # TEE_TCB_SVN2: no TD-preserving update happened
    return body


def build_quote(
    pki: SimPki, tee: str, *, measurement: bytes, mr_signer: bytes, report_data: bytes,
    debug: bool = False, quote_version: int | None = None, td_report: str = "1.0",
    rtmrs: bytes = bytes(4 * 48), mr_servicetd: bytes = bytes(48),
) -> bytes:
    """Build and sign a quote.

    Args:
        pki: the sim hierarchy.
        tee: ``"sgx"`` (quote v3) or ``"tdx"`` (quote v4 or v5).
        measurement: MRENCLAVE (32 bytes) or MRTD (48 bytes).
        mr_signer: MRSIGNER (32 bytes; SGX only).
        report_data: 64 caller-chosen bytes.
        debug: set the DEBUG attribute (for negative tests).
        quote_version: TDX only: 4 (default) or 5.
        td_report: TDX only: ``"1.0"`` or (v5 only) ``"1.5"``.
        rtmrs: TDX only: RTMR0..3 concatenated (default all zero).
        mr_servicetd: TDX TD report 1.5 only: MRSERVICETD (default zero).
    """
    if len(report_data) != 64:
        raise ValueError("report_data must be exactly 64 bytes")
    akey = _attestation_key_raw(pki)
    qe_rd = hashlib.sha256(akey + _QE_AUTH_DATA).digest() + bytes(32)
    qe_report = _sgx_report(CPU_SVN, _QE_ATTRIBUTES, hashlib.sha256(b"confide-sim-qe").digest(),
                            _qe_mr_signer(pki), _QE_PROD_ID[tee], QE_SVN, qe_rd)
    chain = pki.pem("pck", "pck_ca", "root").encode() + b"\x00"
    qe_cert_data = (qe_report + raw_ecdsa_sign(pki.keys["pck"], qe_report)
                    + _u16(len(_QE_AUTH_DATA)) + _QE_AUTH_DATA
                    + _u16(CERT_TYPE_PCK_CHAIN) + _u32(len(chain)) + chain)
    if tee == "sgx":
        if quote_version not in (None, 3):
            raise ValueError("sim SGX quotes are version 3 (dcap-qvl refuses SGX v4)")
        if len(measurement) != 32:
            raise ValueError("MRENCLAVE must be 32 bytes")
        attrs = bytearray(_SGX_ATTRIBUTES)
        if debug:
            attrs[0] |= _SGX_DEBUG_FLAG
        header = (_u16(3) + _u16(2) + _u32(TEE_TYPE_SGX) + _u16(QE_SVN) + _u16(PCE_SVN)
                  + INTEL_QE_VENDOR_ID + bytes(20))
        body = _sgx_report(CPU_SVN, bytes(attrs), measurement, mr_signer, 0, 0, report_data)
        tail = qe_cert_data
    elif tee == "tdx":
        version = quote_version or 4
        if (version, td_report) not in TDX_QUOTE_FORMATS:
            raise ValueError(f"sim TDX quotes are {TDX_QUOTE_FORMATS}, not "
                             f"({version}, {td_report!r})")
        header = (_u16(version) + _u16(2) + _u32(TEE_TYPE_TDX) + _u16(0) + _u16(0)
                  + INTEL_QE_VENDOR_ID + bytes(20))
        body = _td_body(measurement, report_data, debug, td_report, rtmrs, mr_servicetd)
        if version == 5:
            body_type = TD_REPORT15_BODY_TYPE if td_report == "1.5" else TD_REPORT10_BODY_TYPE
            body = _u16(body_type) + _u32(len(body)) + body
        tail = _u16(CERT_TYPE_QE_REPORT) + _u32(len(qe_cert_data)) + qe_cert_data
    else:
        raise ValueError(f"sim quotes exist for 'sgx' and 'tdx', not {tee!r}")
    signed = header + body
    sig_data = raw_ecdsa_sign(pki.keys["attestation"], signed) + akey + tail
    return signed + _u32(len(sig_data)) + sig_data



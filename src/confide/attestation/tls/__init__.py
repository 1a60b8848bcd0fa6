"""Attested TLS: RA-TLS and Teaclave certificates, the report format, client checks.

Builds on :mod:`confide.attestation.appraisal` through the ``VerifyQuote`` seam.
See ``docs/attested-channels.md``.
"""

"""The ``confide`` command line, apart from the SDK it uses (``confide.client``).

``_app.py`` builds the root app and mounts one module per command group:
``_serve`` (serve), ``_demo`` (demo), ``_attestation_service``, ``_users`` (user …),
``_functions`` (function …), ``_files`` (file …), ``_tasks`` (task …), ``_audit``
(audit …), ``_attest`` (attest), ``_crypto`` (encrypt, decrypt) and
``_enclave_info`` (enclave-info …). This package is the top layer: it may wire
the server (``serve``, ``demo``, ``audit verify``); nothing imports it.
"""

from ._app import app, main

__all__ = ["app", "main"]

"""Hardware attesters: Gramine's ``/dev/attestation`` and Linux configfs-tsm (I/O)."""

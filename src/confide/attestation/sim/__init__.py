"""SIM ONLY: a local stand-in for Intel's PKI and quoting enclave. No protection."""

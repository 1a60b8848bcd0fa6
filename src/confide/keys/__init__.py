"""The platform root secret, its derivations and sealing."""

from ._root_secret import KeyError_, RootSecret, Sealer, SimSealer, load_or_create_root_secret

__all__ = ["KeyError_", "RootSecret", "Sealer", "SimSealer", "load_or_create_root_secret"]

"""Build of the optional C extension; pyproject.toml holds the project's metadata.

``confide.crypto._pfs_native`` (teaclave-file-128 nodes in batches, libgcrypt)
needs a C compiler and libgcrypt20-dev. ``optional=True``: without them the
install still succeeds and ``confide.crypto._pfs`` uses its pure-Python path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "confide.crypto._pfs_native",
            sources=["src/confide/crypto/_pfs_native.c"],
            libraries=["gcrypt"],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
            optional=True,
        )
    ]
)

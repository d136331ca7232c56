"""The one compiled part of uok: the analytical copy's chain check in C
(``uok.adapters.analytics._chain``, see adapters/analytics/_chain.c),
linked against OpenSSL's libcrypto (the library Python's own ``hashlib``
uses). Everything else is declared in pyproject.toml.

The extension is optional: without a C compiler, Python's headers or
libcrypto, the build warns and goes on, and the loader checks the chain in
DuckDB and ``hashlib`` instead (slower, same verdicts).
"""

from __future__ import annotations

import ctypes.util
import sys

from setuptools import Extension, setup


def _libcrypto() -> dict[str, list[str]]:
    """How to link libcrypto. On Linux, the runtime library itself
    (``-l:libcrypto.so.3``, as ``ldconfig`` knows it): the development
    package (libssl-dev) is not needed, its prototypes are declared in the C
    file. Elsewhere, ``-lcrypto``."""
    name = ctypes.util.find_library("crypto") if sys.platform.startswith("linux") else None
    if name and name.startswith("libcrypto.so."):
        return {"extra_link_args": [f"-l:{name}"]}
    return {"libraries": ["crypto"]}


setup(
    ext_modules=[
        Extension(
            "uok.adapters.analytics._chain",
            ["adapters/analytics/_chain.c"],
            extra_compile_args=["-O2"],
            optional=True,
            **_libcrypto(),
        )
    ]
)

"""Hashes for the daemon without OpenSSL: CPython's own SHA-256 and BLAKE2.

hashlib maps OpenSSL's libcrypto into the process, about 3.4-3.5 MB of RSS (benchmarks
daemon-idle and daemon-model), for digests CPython computes itself: the same bytes.
Exploration's draws (smart.explore) and the model's checksum (ai.model) hash here;
tests/test_jitter.py checks that the daemon never imports hashlib. Another interpreter
gets hashlib's.
"""

from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - depends on the interpreter
    from hashlib import blake2b

try:  # _sha2 from Python 3.12 on, _sha256 in 3.11
    from _sha2 import sha256
except ImportError:  # pragma: no cover - depends on the interpreter
    try:
        from _sha256 import sha256
    except ImportError:
        from hashlib import sha256

__all__ = ["blake2b", "sha256"]

"""Fixtures and helpers of the custody pytest suite.

eth-account 0.14.0 is the oracle: every address, signature, raw
transaction and v3 keystore this package makes is checked against what
eth-account makes or reads for the same key. TOTP codes are computed here
with the standard library only (RFC 6238 over RFC 4226, HMAC-SHA-1), an
implementation independent of the library under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from pathlib import Path
from typing import Dict
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from eth_account import Account

import custody

# Hardhat's well-known test mnemonic (its first address is
# 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266): public test data only.
MNEMONIC = "test test test test test test test test test test test junk"
PASSPHRASE = "correct horse battery staple"

Account.enable_unaudited_hdwallet_features()


def oracle_account(path: str):
    """eth-account's key at ``path`` of :data:`MNEMONIC`."""
    return Account.from_mnemonic(MNEMONIC, account_path=path)


def totp_params(uri: str) -> Dict[str, object]:
    """The secret, digits, period and algorithm of an otpauth URI."""
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    secret = query["secret"]
    padded = secret + "=" * (-len(secret) % 8)
    return {
        "label": unquote(parsed.path.lstrip("/")),
        "secret": base64.b32decode(padded.upper()),
        "digits": int(query.get("digits", "6")),
        "period": int(query.get("period", "30")),
        "algorithm": query.get("algorithm", "SHA1").lower(),
        "issuer": query.get("issuer"),
    }


def totp_code(uri: str, at: float | None = None) -> str:
    """The RFC 6238 code of an otpauth URI at UNIX time ``at`` (now)."""
    p = totp_params(uri)
    step = int((time.time() if at is None else at) // p["period"])
    mac = hmac.new(p["secret"], struct.pack(">Q", step), getattr(hashlib, p["algorithm"])).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** p["digits"]).zfill(p["digits"])


def wrong_code(uri: str) -> str:
    """A code valid at no step near now (so the gate must say invalid)."""
    near = {totp_code(uri, time.time() + d * 30) for d in range(-3, 4)}
    for candidate in ("314159", "271828", "141421", "173205"):
        if candidate not in near:
            return candidate
    raise AssertionError("unreachable: four codes cannot all be near")


@pytest.fixture(scope="session")
def keystore_dir(tmp_path_factory) -> Path:
    """One keystore made from :data:`MNEMONIC` (light KDF), shared by the
    tests that do not enrol anything."""
    path = tmp_path_factory.mktemp("shared") / "ks"
    custody.Keystore.create(path, PASSPHRASE, MNEMONIC, light_kdf=True)
    return path


@pytest.fixture()
def ks(keystore_dir: Path) -> custody.Keystore:
    return custody.Keystore.open(keystore_dir, PASSPHRASE)


@pytest.fixture()
def fresh(tmp_path: Path) -> custody.Keystore:
    """A keystore of its own (for tests that enrol wallets)."""
    return custody.Keystore.create(tmp_path / "ks", PASSPHRASE, MNEMONIC, light_kdf=True)

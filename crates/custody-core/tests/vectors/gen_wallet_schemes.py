#!/usr/bin/env python3
"""Generates wallet_schemes.json: test vectors for custody's wallet schemes.

An implementation independent of the Rust code under test:
- the path rules are written here again from the module docs of
  crates/custody-core/src/wallet.rs, with Python's hashlib and base64;
- the BIP39 seed is PBKDF2-HMAC-SHA512 from hashlib (BIP39 section "From
  mnemonic to seed"), with unicodedata for NFKD;
- BIP32 derivation is python-bip32 (https://github.com/darosior/python-bip32,
  `pip install bip32`), which uses libsecp256k1 through coincurve.

Run from anywhere:
    python3 crates/custody-core/tests/vectors/gen_wallet_schemes.py
It rewrites wallet_schemes.json next to this script. The output is
deterministic: running it again must give the same file.
"""

import base64
import hashlib
import json
import os
import unicodedata
from importlib.metadata import version

from bip32 import BIP32

HARDENED = 0x8000_0000

MNEMONICS = [
    {
        "name": "abandon-about",
        "mnemonic": "abandon abandon abandon abandon abandon abandon "
        "abandon abandon abandon abandon abandon about",
        "passphrase": "",
    },
    {
        # trezor/python-mnemonic vectors.json, english[23] (24 words).
        "name": "trezor-english-23",
        "mnemonic": "void come effort suffer camp survey warrior heavy shoot "
        "primary clutch crush open amazing screen patrol group space point "
        "ten exist slush involve unfold",
        "passphrase": "TREZOR",
    },
]

NAMES = [
    "alice",
    "alice@example.com",
    "Zo\u00eb \U0001f980 wallet",  # "Zoë 🦀 wallet", ë precomposed (U+00EB)
    "Zoe\u0308 \U0001f980 wallet",  # the same text with ë decomposed: another wallet
    "team:ops/hot-wallet",
    "x" * 150 + "\u00e9" * 150,  # 300 characters, 450 UTF-8 bytes
]

DEFAULT_INDICES = [0, 1, 7, HARDENED - 1]
FORTANIX_INDICES = [0, 1, 7, HARDENED - 1, HARDENED + 5]


def bip39_seed(mnemonic, passphrase):
    m = unicodedata.normalize("NFKD", mnemonic).encode()
    salt = ("mnemonic" + unicodedata.normalize("NFKD", passphrase)).encode()
    return hashlib.pbkdf2_hmac("sha512", m, salt, 2048)


def default_wallet_path(name):
    h = hashlib.sha256(b"custody/wallet/v1" + b"\x00" + name.encode("utf-8")).digest()
    words = [int.from_bytes(h[4 * i : 4 * i + 4], "big") & 0x7FFF_FFFF for i in range(4)]
    return [44 | HARDENED, 60 | HARDENED] + [w | HARDENED for w in words]


def fortanix_wallet_path(name):
    b64 = base64.b64encode(name.encode("utf-8"))  # standard alphabet, '=' padding
    h = hashlib.sha256(b64).digest()
    return [int.from_bytes(h[4 * i : 4 * i + 4], "big") for i in range(8)]


def path_str(path):
    """m/44'/60'/… with ' for hardened, as custody's DerivationPath prints it."""
    parts = ["m"]
    for i in path:
        parts.append(f"{i - HARDENED}'" if i >= HARDENED else str(i))
    return "/".join(parts)


def cases_for(master, scheme, wallet_path, indices):
    out = []
    for name in NAMES:
        node = wallet_path(name)
        keys = []
        for index in indices:
            path = node + [index]
            keys.append(
                {
                    "index": index,
                    "path": path_str(path),
                    "private_key": master.get_privkey_from_path(path).hex(),
                    "public_key": master.get_pubkey_from_path(path).hex(),
                }
            )
        out.append(
            {
                "scheme": scheme,
                "wallet_name": name,
                "wallet_name_utf8_hex": name.encode("utf-8").hex(),
                "wallet_path": path_str(node),
                "wallet_xpub": master.get_xpub_from_path(node),
                "keys": keys,
            }
        )
    return out


def main():
    seeds = []
    for m in MNEMONICS:
        seed = bip39_seed(m["mnemonic"], m["passphrase"])
        master = BIP32.from_seed(seed, network="main")
        seeds.append(
            {
                "name": m["name"],
                "mnemonic": m["mnemonic"],
                "passphrase": m["passphrase"],
                "seed": seed.hex(),
                "master_xpub": master.get_xpub(),
                "wallets": cases_for(master, "default", default_wallet_path, DEFAULT_INDICES)
                + cases_for(master, "fortanix", fortanix_wallet_path, FORTANIX_INDICES),
            }
        )
    doc = {
        "generator": "crates/custody-core/tests/vectors/gen_wallet_schemes.py",
        "library": f"python-bip32 {version('bip32')} (coincurve {version('coincurve')})",
        "description": "Wallet name + key index -> BIP32 path, private key, compressed "
        "public key and wallet-node xpub, for custody's 'default' and 'fortanix' "
        "wallet schemes. Paths computed with hashlib/base64, keys with python-bip32.",
        "seeds": seeds,
    }
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "wallet_schemes.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=True)
        f.write("\n")


if __name__ == "__main__":
    main()

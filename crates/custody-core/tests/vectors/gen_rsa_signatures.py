#!/usr/bin/env python3
"""Generates rsa_signatures.json: RSA public keys and signatures made by an
implementation independent of the Rust code under test (pyca/cryptography,
on OpenSSL), for custody-core's RsaPublicKey and check_signature.

For each key: its DER SubjectPublicKeyInfo and PKCS#1 RSAPublicKey (as
OpenSSL encodes them), n and e, and for a few messages the SHA-256 digest
and signatures:
- pkcs1: RSASSA-PKCS1-v1_5 with SHA-256 (JOSE RS256), must verify;
- pss: RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32 (JOSE PS256), must verify;
- pss_salt_max: PSS with the longest salt (not PS256), must be refused;
- pss_mgf1_sha1: PSS with MGF1-SHA-1, must be refused;
- pkcs1_sha384: PKCS#1 v1.5 over SHA-384 of the message, must be refused
  (a SHA-256 DigestInfo is expected).
Keys the seam must refuse (a 1024-bit modulus, e = 3) carry only their
encodings.

Run with the test venv's Python (it has cryptography):
    $CUSTODY_TEST_PYTHON crates/custody-core/tests/vectors/gen_rsa_signatures.py
It rewrites rsa_signatures.json next to this script. Keys and PSS salts are
random, so each run gives a new (equally valid) file.
"""

import hashlib
import json
import os
from importlib.metadata import version

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MESSAGES = [b"", b"custody", b"eyJhbGciOiJQUzI1NiJ9.eyJzdWIiOiJjdXN0b2R5In0"]


def encodings(public):
    n = public.public_numbers().n
    e = public.public_numbers().e
    return {
        "bits": public.key_size,
        "n": format(n, "x").rjust((n.bit_length() + 7) // 8 * 2, "0"),
        "e": format(e, "x").rjust((e.bit_length() + 7) // 8 * 2, "0"),
        "spki": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ).hex(),
        "pkcs1": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        ).hex(),
    }


def pss(mgf_hash, salt):
    return padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=salt)


def main():
    keys = []
    for bits in (2048, 3072, 4096):
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        entry = encodings(private.public_key())
        entry["valid"] = True
        entry["signatures"] = []
        for message in MESSAGES:
            sign = lambda pad, h=hashes.SHA256(): private.sign(message, pad, h).hex()
            entry["signatures"].append(
                {
                    "message": message.hex(),
                    "digest": hashlib.sha256(message).hexdigest(),
                    "pkcs1": sign(padding.PKCS1v15()),
                    "pss": sign(pss(hashes.SHA256(), 32)),
                    "pss_salt_max": sign(pss(hashes.SHA256(), padding.PSS.MAX_LENGTH)),
                    "pss_mgf1_sha1": sign(pss(hashes.SHA1(), 32)),
                    "pkcs1_sha384": sign(padding.PKCS1v15(), hashes.SHA384()),
                }
            )
        keys.append(entry)
    for bits, e, why in ((1024, 65537, "modulus below 2048 bits"), (2048, 3, "exponent 3")):
        private = rsa.generate_private_key(public_exponent=e, key_size=bits)
        entry = encodings(private.public_key())
        entry["valid"] = False
        entry["why"] = why
        keys.append(entry)
    out = {
        "generator": "gen_rsa_signatures.py, cryptography " + version("cryptography"),
        "keys": keys,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rsa_signatures.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

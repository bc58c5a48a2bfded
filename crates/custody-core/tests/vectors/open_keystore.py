#!/usr/bin/env python3
"""Opens a custody keystore directory (format v1 or v2) with its passphrase,
from crates/custody-core/SPEC.md alone: an independent reading of the
"Keystore directory v1/v2", "Keyring v1", "Envelope v1" and "Local KEK wrap
v1" sections, written without the Rust code, with Python's hashlib (scrypt,
SHA-256), hmac and pyca/cryptography (AES-GCM).

    python3 open_keystore.py DIR PASSPHRASE

prints one JSON object: {"version", "generation", "kekId", "keyring": [ids,
current first] (v2), "seed": hex, "keys": {keyId: hex}}. Exits non-zero with
a message on stderr for a wrong passphrase or any deviation from the SPEC.
tests/keystore_independent.rs runs it against the frozen directories and
against keystores the Rust code writes.
"""

import hashlib
import hmac
import json
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"CUSTENV"
WRAP_DOMAIN = b"custody/kek-wrap/v1"
CHECK_DOMAIN = b"custody/kek-check/v1"


def fail(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(1)


def canonical(ctx):
    items = sorted(((k.encode(), v.encode()) for k, v in ctx.items()), key=lambda kv: kv[0])
    out = struct.pack(">H", len(items))
    for k, v in items:
        out += struct.pack(">H", len(k)) + k + struct.pack(">H", len(v)) + v
    return out


def parse_envelope(b):
    if b[:7] != MAGIC or b[7] != 1 or b[8] != 1:
        fail("not an Envelope v1")
    (k,) = struct.unpack(">H", b[9:11])
    kek_id = b[11:11 + k].decode("ascii")
    (w,) = struct.unpack(">I", b[11 + k:15 + k])
    wrapped = b[15 + k:15 + k + w]
    at = 15 + k + w
    nonce = b[at:at + 12]
    (n,) = struct.unpack(">Q", b[at + 12:at + 20])
    ct_tag = b[at + 20:]
    if len(ct_tag) != n + 16:
        fail("envelope length does not match its plaintext length")
    return kek_id, wrapped, nonce, ct_tag


def local_unwrap(kek_key, kek_id, wrapped, ctx):
    if len(wrapped) != 61 or wrapped[0] != 1:
        fail("not a Local KEK wrap v1")
    aad = WRAP_DOMAIN + struct.pack(">H", len(kek_id)) + kek_id.encode() + canonical(ctx)
    return AESGCM(kek_key).decrypt(wrapped[1:13], wrapped[13:], aad)


def open_envelope(b, keys, ctx):
    """keys: {kekId: 32-byte key}"""
    kek_id, wrapped, nonce, ct_tag = parse_envelope(b)
    if kek_id not in keys:
        fail(f"no key for KEK id {kek_id}")
    data_key = local_unwrap(keys[kek_id], kek_id, wrapped, ctx)
    aad = MAGIC + bytes([1, 1]) + nonce + canonical(ctx)
    return kek_id, AESGCM(data_key).decrypt(nonce, ct_tag, aad)


def passphrase_kek(kek, passphrase):
    kdf = kek["kdf"]
    if kdf["algorithm"] != "scrypt":
        fail("unknown KDF")
    salt = bytes.fromhex(kdf["salt"])
    key = hashlib.scrypt(passphrase.encode(), salt=salt, n=1 << kdf["logN"], r=kdf["r"],
                         p=kdf["p"], dklen=32, maxmem=1 << 30)
    if kek["kekId"] != "passphrase:" + hashlib.sha256(salt).digest()[:8].hex():
        fail("kekId is not the salt's")
    check = hmac.new(key, CHECK_DOMAIN, hashlib.sha256).digest()
    if not hmac.compare_digest(check.hex(), kek["kekCheck"]):
        fail("wrong passphrase")
    return key


def parse_keyring(b):
    if b[:4] != b"CKR1" or not 1 <= b[4] <= 16:
        fail("not a Keyring v1")
    at, out = 5, []
    for _ in range(b[4]):
        n = b[at]
        kid = b[at + 1:at + 1 + n].decode("ascii")
        key = b[at + 1 + n:at + 33 + n]
        if not 1 <= n <= 128 or len(key) != 32 or kid in dict(out):
            fail("bad keyring entry")
        out.append((kid, key))
        at += 33 + n
    if at != len(b):
        fail("bytes after the keyring")
    return out


def main():
    d, passphrase = sys.argv[1], sys.argv[2]
    meta = json.load(open(os.path.join(d, "keystore.json")))
    if meta["format"] != "custody-keystore":
        fail("not a custody keystore")
    gen = meta["generation"]
    secrets = os.path.join(d, f"secrets.{gen}")
    out = {"version": meta["version"], "generation": gen}
    if meta["version"] == 1:
        root = {"kdf": meta["kdf"], "kekId": meta["kekId"], "kekCheck": meta["kekCheck"]}
        keys = {meta["kekId"]: passphrase_kek(root, passphrase)}
        out["kekId"] = meta["kekId"]
    elif meta["version"] == 2:
        kek = meta["kek"]
        if kek["type"] != "passphrase":
            fail("this opener holds passphrases only")
        root_key = passphrase_kek(kek, passphrase)
        ctx = {"custody": "keyring", "fingerprint": meta["fingerprint"]}
        env = open(os.path.join(secrets, "keyring.env"), "rb").read()
        kid, ring = open_envelope(env, {kek["kekId"]: root_key}, ctx)
        if kid != kek["kekId"]:
            fail("keyring.env is not under the recorded KEK")
        entries = parse_keyring(ring)
        keys = dict(entries)
        out["kekId"] = kek["kekId"]
        out["keyring"] = [k for k, _ in entries]
    else:
        fail("unknown version")
    _, seed = open_envelope(open(os.path.join(secrets, "master.env"), "rb").read(), keys,
                            {"custody": "master-seed"})
    out["seed"] = seed.hex()
    out["keys"] = {}
    kdir = os.path.join(secrets, "keys")
    if os.path.isdir(kdir):
        for name in sorted(os.listdir(kdir)):
            if name.startswith(".") or not name.endswith(".env"):
                continue
            key_id = name[:-4]
            _, key = open_envelope(open(os.path.join(kdir, name), "rb").read(), keys,
                                   {"custody": "imported-key", "keyId": key_id})
            out["keys"][key_id] = key.hex()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

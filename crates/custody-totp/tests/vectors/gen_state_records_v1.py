#!/usr/bin/env python3
"""Generates state_records_v1.json: frozen vectors for the state-store records
of custody-totp (crates/custody-totp/SPEC.md).

Independent of the Rust code: wallet nodes follow custody-core's `default`
wallet scheme (crates/custody-core/src/wallet.rs), envelopes and the local
KEK wrap follow crates/custody-core/SPEC.md, built with pyca/cryptography
AES-GCM; the public keys of key enrolments are computed by pyca/cryptography
(secp256k1, X9.62 compressed points); record JSON and keys follow
custody-totp's SPEC.md. Codes come from RFC 6238 (Appendix B, SHA-1 seed)
recomputed with hmac/hashlib.

    pip install cryptography
    python3 gen_state_records_v1.py > state_records_v1.json
"""

import hashlib
import hmac
import json
import struct
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"CUSTENV"
WRAP_DOMAIN = b"custody/kek-wrap/v1"
HARDENED = 0x80000000


def canonical_context(pairs):
    items = sorted(((k.encode(), v.encode()) for k, v in pairs.items()), key=lambda kv: kv[0])
    out = struct.pack(">H", len(items))
    for k, v in items:
        out += struct.pack(">H", len(k)) + k + struct.pack(">H", len(v)) + v
    return out


def local_wrap(kek_key, kek_id, nonce, data_key, context):
    aad = WRAP_DOMAIN + struct.pack(">H", len(kek_id)) + kek_id.encode() + canonical_context(context)
    return bytes([1]) + nonce + AESGCM(kek_key).encrypt(nonce, data_key, aad)


def envelope(data_key, kek_id, wrapped, nonce, context, plaintext):
    aad = MAGIC + bytes([1, 1]) + nonce + canonical_context(context)
    ct_tag = AESGCM(data_key).encrypt(nonce, plaintext, aad)
    return (
        MAGIC + bytes([1, 1])
        + struct.pack(">H", len(kek_id)) + kek_id.encode()
        + struct.pack(">I", len(wrapped)) + wrapped
        + nonce + struct.pack(">Q", len(plaintext)) + ct_tag
    )


def path_string(components):
    parts = ["m"]
    for c in components:
        parts.append(f"{c - HARDENED}'" if c >= HARDENED else str(c))
    return "/".join(parts)


def default_wallet_node(name):
    h = hashlib.sha256(b"custody/wallet/v1\x00" + name.encode()).digest()
    words = [struct.unpack(">I", h[4 * i:4 * i + 4])[0] & 0x7FFFFFFF for i in range(4)]
    return [44 | HARDENED, 60 | HARDENED] + [w | HARDENED for w in words]


def key_for(kind, components):
    return f"totp/v1/{kind}/" + hashlib.sha256(path_string(components).encode()).hexdigest()


def compressed_public_key(private_key):
    key = ec.derive_private_key(int.from_bytes(private_key, "big"), ec.SECP256K1())
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )


def key_for_public_key(kind, compressed):
    return f"totp/v1/{kind}/" + hashlib.sha256(compressed).hexdigest()


def compact(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def totp(secret, t, digits, period=30):
    msg = struct.pack(">Q", t // period)
    mac = hmac.new(secret, msg, hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 10 ** digits
    return str(code).zfill(digits)


KEK_ID = "totp-vector-kek"
KEK_KEY = bytes(range(0x10, 0x30))
DATA_KEY = bytes(range(0x50, 0x70))
WRAP_NONCE = bytes(range(0xC0, 0xCC))
PAYLOAD_NONCE = bytes(range(0xD0, 0xDC))
SECRET = b"12345678901234567890"  # the RFC 6238 SHA-1 seed


def enrolment(wallet, issuer, digits, period, enrolled_at):
    node = default_wallet_node(wallet)
    ctx = {
        "custody": "totp-secret",
        "wallet": wallet,
        "algorithm": "SHA1",
        "digits": str(digits),
        "period": str(period),
    }
    wrapped = local_wrap(KEK_KEY, KEK_ID, WRAP_NONCE, DATA_KEY, ctx)
    env = envelope(DATA_KEY, KEK_ID, wrapped, PAYLOAD_NONCE, ctx, SECRET)
    record = {
        "v": 1,
        "wallet": wallet,
        "issuer": issuer,
        "algorithm": "SHA1",
        "digits": digits,
        "period": period,
        "node": path_string(node),
        "envelope": env.hex(),
        "enrolledAt": enrolled_at,
    }
    ancestors = [key_for("under", node[:n]) for n in range(len(node))]
    return {
        "wallet": wallet,
        "node": path_string(node),
        "nodeKey": key_for("node", node),
        "guardKey": key_for("guard", node),
        "ancestorKeys": ancestors,
        "context": ctx,
        "record": compact(record),
        # RFC 6238 Appendix B times, codes of this record's digits.
        "codes": [
            {"time": t, "step": t // period, "code": totp(SECRET, t, digits, period)}
            for t in (59, 1111111109, 1234567890, 2000000000)
        ],
    }


def key_enrolment(private_key, label, issuer, digits, period, enrolled_at):
    public_key = compressed_public_key(private_key)
    ctx = {
        "custody": "totp-secret",
        "public-key": public_key.hex(),
        "algorithm": "SHA1",
        "digits": str(digits),
        "period": str(period),
    }
    wrapped = local_wrap(KEK_KEY, KEK_ID, WRAP_NONCE, DATA_KEY, ctx)
    env = envelope(DATA_KEY, KEK_ID, wrapped, PAYLOAD_NONCE, ctx, SECRET)
    record = {
        "v": 1,
        "label": label,
        "issuer": issuer,
        "algorithm": "SHA1",
        "digits": digits,
        "period": period,
        "publicKey": public_key.hex(),
        "envelope": env.hex(),
        "enrolledAt": enrolled_at,
    }
    return {
        "label": label,
        # The key itself, so that a test can hold it in a vault and sign.
        "privateKey": private_key.hex(),
        "publicKey": public_key.hex(),
        "recordKey": key_for_public_key("key", public_key),
        "guardKey": key_for_public_key("key-guard", public_key),
        "context": ctx,
        "record": compact(record),
        "codes": [
            {"time": t, "step": t // period, "code": totp(SECRET, t, digits, period)}
            for t in (59, 1111111109, 1234567890, 2000000000)
        ],
    }


def guard(last_step, failures, lock_level, locked_until):
    return compact({
        "v": 1,
        "lastStep": last_step,
        "failures": failures,
        "lockLevel": lock_level,
        "lockedUntil": locked_until,
    })


def main():
    doc = {
        "description": "custody-totp state records v1 (generated by gen_state_records_v1.py; "
        "see SPEC.md). Envelopes per custody-core SPEC.md, AES-GCM by pyca/cryptography.",
        "kekId": KEK_ID,
        "kekKey": KEK_KEY.hex(),
        "secret": SECRET.hex(),
        "scheme": {"key": "totp/v1/scheme", "record": compact({"v": 1, "scheme": "default"})},
        "enrolments": [
            enrolment("alice@example.com", "custody", 8, 30, 1700000000),
            enrolment("Zoë 🦀 team:ops", "ACME Co", 6, 30, 1700000001),
        ],
        "keyEnrolments": [
            key_enrolment(
                bytes(range(0x01, 0x21)),
                "kms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "custody", 8, 30, 1700000002,
            ),
            key_enrolment(
                hashlib.sha256(b"custody-totp key enrolment vector 4").digest(),
                "vault:imported/Zoë 🔑",
                "ACME Co", 6, 30, 1700000003,
            ),
        ],
        "counter": {"count": 1, "record": compact({"v": 1, "count": 1})},
        "guards": [
            {"lastStep": None, "failures": 0, "lockLevel": 0, "lockedUntil": 0,
             "record": guard(None, 0, 0, 0)},
            {"lastStep": 66666666, "failures": 0, "lockLevel": 0, "lockedUntil": 0,
             "record": guard(66666666, 0, 0, 0)},
            {"lastStep": 41152263, "failures": 6, "lockLevel": 2, "lockedUntil": 1234567950,
             "record": guard(41152263, 6, 2, 1234567950)},
        ],
    }
    json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

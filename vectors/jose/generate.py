"""Writes jws.json, concat_kdf.json, jsonwebtoken_keys.json and jwe.json, the
vectors custody-jose's tests walk (`generate.py jwe` writes jwe.json alone).

Independent implementations only: jwcrypto (JWS, JWK, RFC 7638 thumbprints,
and the RFC examples its own test suite carries) and pyca/cryptography
(ConcatKDFHash for the Concat KDF of RFC 7518 §4.6.2). Run with the pinned
versions below; the output is committed, and the tests never run Python.

    python -m venv v && v/bin/pip install jwcrypto==1.6.1 cryptography==50.0.2
    v/bin/python generate.py
"""
import base64
import hashlib
import importlib.util
import json
import os
import struct
import sys
import time

import jwcrypto
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from jwcrypto import jwk, jws, jwt

HERE = os.path.dirname(os.path.abspath(__file__))


def jwe_vectors():
    """jwe.json: compact JWEs sealed by jwcrypto (A256GCM; RSA-OAEP-256,
    ECDH-ES, ECDH-ES+A256KW on P-256), a `scope` header listed in `crit`,
    to TEST-ONLY recipient keys published here (their private halves are in
    the file so the tests can hold them in a vault or a test stand-in)."""
    from jwcrypto import jwe
    from jwcrypto.common import JWSEHeaderParameter, json_encode
    registry = {"scope": JWSEHeaderParameter("custody scope", True, True, None)}
    ec_key = jwk.JWK.generate(kty="EC", crv="P-256")
    rsa_key = jwk.JWK.generate(kty="RSA", size=2048)
    scope = "importer/api-keys"
    out = {"generator": "vectors/jose/generate.py", "jwcrypto": "1.6.1", "scope": scope,
           "keys": {"p256": json.loads(ec_key.export_private()), "rsa": json.loads(rsa_key.export_private())},
           "sealed": []}
    from cryptography.hazmat.primitives import serialization
    out["keys"]["rsa_pkcs1_der"] = rsa_key.get_op_key("decrypt").private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()).hex()
    cases = []
    for alg, key in (("ECDH-ES", ec_key), ("ECDH-ES+A256KW", ec_key), ("RSA-OAEP-256", rsa_key)):
        for i in range(3):
            cases.append((alg, key, {}, os.urandom(16 + 7 * i)))
    # apu/apv (RFC 7518 §4.6.1.2/3) enter the Concat KDF decoded.
    for alg in ("ECDH-ES", "ECDH-ES+A256KW"):
        cases.append((alg, ec_key, {"apu": b64(b"Alice"), "apv": b64(os.urandom(20))}, b"sk_live_" + os.urandom(8).hex().encode()))
    # (No empty plaintext: jwcrypto 1.6.1's decrypt takes an empty one for a
    # failure, `if not self.plaintext`.)
    for alg, key, extra, plaintext in cases:
        header = {"alg": alg, "enc": "A256GCM", "kid": key.thumbprint(), "scope": scope, "crit": ["scope"], **extra}
        e = jwe.JWE(plaintext, protected=json_encode(header), header_registry=registry)
        e.add_recipient(key)
        token = e.serialize(compact=True)
        # jwcrypto opens its own, as a check of the generator.
        d = jwe.JWE(header_registry=registry)
        d.deserialize(token, key=key)
        assert d.payload == plaintext
        out["sealed"].append({"alg": alg, "jwe": token, "plaintext": b64(plaintext),
                              "apu": extra.get("apu", ""), "apv": extra.get("apv", "")})
    # Sealed for another scope: opened as importer/api-keys it is refused.
    header = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": ec_key.thumbprint(), "scope": "billing/api-keys", "crit": ["scope"]}
    e = jwe.JWE(b"not yours", protected=json_encode(header), header_registry=registry)
    e.add_recipient(ec_key)
    out["other_scope"] = e.serialize(compact=True)
    # No scope at all: parses, never opens.
    e = jwe.JWE(b"no scope", protected=json_encode({"alg": "ECDH-ES", "enc": "A256GCM"}))
    e.add_recipient(ec_key)
    out["no_scope"] = e.serialize(compact=True)
    # Sealed to another P-256 key (kid of ours): opens to the opaque error.
    other = jwk.JWK.generate(kty="EC", crv="P-256")
    header = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": ec_key.thumbprint(), "scope": scope, "crit": ["scope"]}
    e = jwe.JWE(b"wrong key", protected=json_encode(header), header_registry=registry)
    e.add_recipient(other)
    out["wrong_key"] = e.serialize(compact=True)
    with open(os.path.join(HERE, "jwe.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print("jwe", len(out["sealed"]))




def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def public(key: dict) -> dict:
    return {k: v for k, v in key.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth", "k")}


if sys.argv[1:] == ["jwe"]:
    jwe_vectors()
    sys.exit(0)

# The RFC examples jwcrypto's own tests carry, byte for byte.
spec = importlib.util.spec_from_file_location(
    "jwcrypto_tests", os.path.join(os.path.dirname(jwcrypto.__file__), "tests.py"))
T = importlib.util.module_from_spec(spec)
spec.loader.exec_module(T)

rfc = []
for name, ex in (("RFC 7515 A.2 (RS256)", T.A2_example), ("RFC 7515 A.3 (ES256)", T.A3_example)):
    key = public(ex["key"])
    key["alg"] = ex["alg"]
    token = ".".join([b64(ex["protected"].encode()), b64(ex["payload"]), b64(ex["signature"])])
    rfc.append({"name": name, "jwk": key, "token": token, "payload": b64(ex["payload"])})

# RFC 8037 A.4: Ed25519 is deterministic, so jwcrypto's signature of the
# RFC's payload with the RFC's A.1 key is the RFC's A.4 value.
ed_priv = jwk.JWK(**T.PrivateKeys_EdDsa["keys"][0])
s = jws.JWS(b"Example of Ed25519 signing")
s.add_signature(ed_priv, alg="EdDSA", protected=json.dumps({"alg": "EdDSA"}, separators=(",", ":")))
ed_token = s.serialize(compact=True)
assert ed_token.split(".")[2] == ("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"), ed_token
rfc.append({"name": "RFC 8037 A.4 (EdDSA)", "jwk": T.PublicKeys_EdDsa["keys"][0], "token": ed_token,
            "payload": b64(b"Example of Ed25519 signing")})

thumbprints = [{"jwk": k, "thumbprint": t}
               for k, t in zip(T.PublicKeys["keys"], T.PublicKeys["thumbprints"])]
thumbprints += [{"jwk": k, "thumbprint": t}
                for k, t in zip(T.PublicKeys_EdDsa["keys"], T.PublicKeys_EdDsa["thumbprints"])]

# Fresh keys and JWTs made by jwcrypto, per algorithm.
NOW = 1_800_000_000
CLAIMS = {"iss": "https://issuer.example", "aud": "payments", "sub": "svc-importer",
          "iat": NOW, "nbf": NOW, "exp": NOW + 600, "jti": "j-1"}
makers = {
    "ES256": lambda: jwk.JWK.generate(kty="EC", crv="P-256"),
    "ES256K": lambda: jwk.JWK.generate(kty="EC", crv="secp256k1"),
    "RS256": lambda: jwk.JWK.generate(kty="RSA", size=2048),
    "PS256": lambda: jwk.JWK.generate(kty="RSA", size=2048),
    "EdDSA": lambda: jwk.JWK.generate(kty="OKP", crv="Ed25519"),
}
N = 2**256 - 0x14551231950B75FC4402DA1732FC9BEBF  # secp256k1 order
tokens = []
for alg, make in makers.items():
    count = 12 if alg == "ES256K" else 3
    key = make()
    pub = json.loads(key.export_public())
    if pub["kty"] == "RSA":
        pub["alg"] = alg
    pub["kid"] = key.thumbprint()
    for i in range(count):
        claims = dict(CLAIMS, jti=f"{alg}-{i}")
        t = jwt.JWT(header={"alg": alg, "kid": pub["kid"], "typ": "JWT"}, claims=claims)
        t.make_signed_token(key)
        token = t.serialize()
        entry = {"alg": alg, "jwk": pub, "token": token, "claims": claims}
        if alg == "ES256K":
            sig = base64.urlsafe_b64decode(token.split(".")[2] + "==")
            entry["high_s"] = int.from_bytes(sig[32:], "big") > N // 2
        tokens.append(entry)
assert any(t.get("high_s") for t in tokens) and any(t.get("high_s") is False for t in tokens)

# Attacks, each refused by name in the tests.
rsa_entry = next(t for t in tokens if t["alg"] == "RS256")
rsa_key = jwk.JWK(**rsa_entry["jwk"])
attacks = []
h = b64(json.dumps({"alg": "none", "kid": rsa_entry["jwk"]["kid"]}).encode())
p = b64(json.dumps(CLAIMS).encode())
attacks.append({"name": "alg none", "jwk": rsa_entry["jwk"], "token": f"{h}.{p}.", "error": "unsupported-algorithm"})
# HS256 keyed with the RSA public key's PEM: the classic confusion.
import hmac
pem = rsa_key.export_to_pem()
h = b64(json.dumps({"alg": "HS256", "kid": rsa_entry["jwk"]["kid"]}).encode())
mac = hmac.new(pem, f"{h}.{p}".encode(), hashlib.sha256).digest()
attacks.append({"name": "HS256 with the public key as secret", "jwk": rsa_entry["jwk"],
                "token": f"{h}.{p}.{b64(mac)}", "error": "unsupported-algorithm"})
# An attacker's key in the header (jwk), the token signed by it.
evil = jwk.JWK.generate(kty="EC", crv="P-256")
t = jwt.JWT(header={"alg": "ES256", "kid": next(x for x in tokens if x["alg"] == "ES256")["jwk"]["kid"],
                    "jwk": json.loads(evil.export_public())}, claims=CLAIMS)
t.make_signed_token(evil)
attacks.append({"name": "embedded jwk header", "jwk": next(x for x in tokens if x["alg"] == "ES256")["jwk"],
                "token": t.serialize(), "error": "bad-signature"})
# An ES256 token presented for the RSA key (alg chosen by the token).
es = next(x for x in tokens if x["alg"] == "ES256")
h = b64(json.dumps({"alg": "ES256", "kid": rsa_entry["jwk"]["kid"]}).encode())
attacks.append({"name": "alg not the key's", "jwk": rsa_entry["jwk"],
                "token": h + "." + ".".join(es["token"].split(".")[1:]), "error": "algorithm-mismatch"})
# A critical extension nobody here understands (RFC 7515 §4.1.11: refused),
# signed by the right key.
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
crit_key = jwk.JWK.generate(kty="EC", crv="P-256")
crit_pub = json.loads(crit_key.export_public())
h = b64(json.dumps({"alg": "ES256", "crit": ["x-custody"], "x-custody": 1}).encode())
der = crit_key.get_op_key("sign").sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
r, s_ = decode_dss_signature(der)
attacks.append({"name": "unknown critical header", "jwk": crit_pub,
                "token": f"{h}.{p}.{b64(r.to_bytes(32, 'big') + s_.to_bytes(32, 'big'))}",
                "error": "malformed"})

vectors = {"generator": "vectors/jose/generate.py", "jwcrypto": "1.6.1",
           "now": NOW, "rfc": rfc, "thumbprints": thumbprints, "tokens": tokens, "attacks": attacks}
with open(os.path.join(HERE, "jws.json"), "w") as f:
    json.dump(vectors, f, indent=1, sort_keys=True)
    f.write("\n")

# TEST-ONLY private keys (fresh, published here, never used elsewhere) for
# the differential test against the jsonwebtoken crate, in the DER forms its
# rust_crypto backend reads: PKCS#8 for EC and Ed25519, PKCS#1 for RSA.
from cryptography.hazmat.primitives import serialization
oracle = []
for alg, make in (("ES256", makers["ES256"]), ("RS256", makers["RS256"]), ("PS256", makers["PS256"]),
                  ("EdDSA", makers["EdDSA"])):
    key = make()
    priv = key.get_op_key("sign")
    fmt = (serialization.PrivateFormat.TraditionalOpenSSL if alg in ("RS256", "PS256")
           else serialization.PrivateFormat.PKCS8)
    der = priv.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
    pub = json.loads(key.export_public())
    pub["alg"] = alg
    pub["kid"] = key.thumbprint()
    oracle.append({"alg": alg, "private_der": der.hex(), "jwk": pub})
with open(os.path.join(HERE, "jsonwebtoken_keys.json"), "w") as f:
    json.dump({"generator": "vectors/jose/generate.py",
               "note": "TEST-ONLY private keys for the jsonwebtoken differential test",
               "keys": oracle}, f, indent=1, sort_keys=True)
    f.write("\n")

# Concat KDF (RFC 7518 §4.6.2) by pyca/cryptography.
def other_info(alg: bytes, apu: bytes, apv: bytes, bits: int) -> bytes:
    lp = lambda b: struct.pack(">I", len(b)) + b
    return lp(alg) + lp(apu) + lp(apv) + struct.pack(">I", bits)

kdf = []
for alg, bits in (("A256GCM", 256), ("ECDH-ES+A256KW", 256), ("A128GCM", 128), ("A192GCM", 192),
                  ("A128CBC-HS256", 256), ("A256CBC-HS512", 512)):
    for apu, apv in ((b"", b""), (b"Alice", b"Bob"), (os.urandom(7), os.urandom(33))):
        z = os.urandom(32)
        out = ConcatKDFHash(algorithm=hashes.SHA256(), length=bits // 8,
                            otherinfo=other_info(alg.encode(), apu, apv, bits)).derive(z)
        kdf.append({"alg": alg, "bits": bits, "z": z.hex(), "apu": b64(apu), "apv": b64(apv), "key": out.hex()})
# Shared secrets with leading zero bytes (hyperledger-cacti#4409 dropped
# them): Z stays 32 bytes, zeros included, as SEC 1 writes the x-coordinate.
for alg, bits, zeros in (("A256GCM", 256, 1), ("A128CBC-HS256", 256, 2), ("ECDH-ES+A256KW", 256, 5),
                         ("A256CBC-HS512", 512, 3)):
    z = bytes(zeros) + os.urandom(32 - zeros)
    if z[zeros] == 0:
        z = z[:zeros] + b"\x01" + z[zeros + 1:]
    apu, apv = b"Alice", b"Bob"
    out = ConcatKDFHash(algorithm=hashes.SHA256(), length=bits // 8,
                        otherinfo=other_info(alg.encode(), apu, apv, bits)).derive(z)
    kdf.append({"alg": alg, "bits": bits, "z": z.hex(), "apu": b64(apu), "apv": b64(apv), "key": out.hex(),
                "leading_zero_bytes": zeros})
with open(os.path.join(HERE, "concat_kdf.json"), "w") as f:
    json.dump({"generator": "vectors/jose/generate.py", "vectors": kdf}, f, indent=1)
    f.write("\n")
print(len(rfc), len(thumbprints), len(tokens), len(attacks), len(kdf))
jwe_vectors()

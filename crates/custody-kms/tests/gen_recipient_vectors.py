#!/usr/bin/env python3
"""Independent builder of AWS KMS `CiphertextForRecipient` structures.

KMS answers a Decrypt that carries a `Recipient` with a CMS ContentInfo
(RFC 5652) in BER: EnvelopedData v2, one KeyTransRecipientInfo (v2,
subjectKeyIdentifier) with RSAES-OAEP (SHA-256, MGF1-SHA-256), and
EncryptedContentInfo id-data / AES-256-CBC (PKCS#7 padding). This script
builds such structures with `cryptography` (RSA-OAEP, AES-CBC) and
`asn1crypto` (the CMS types, DER), then re-encodes the DER as BER the way
streaming CMS encoders write it: indefinite lengths on constructed
elements, OCTET STRINGs split into constructed chunks (nested too),
non-minimal long-form lengths. Nothing here shares code with the Rust
reader it checks (custody-kms, src/nitro/{ber,recipient}.rs).

Modes:
  gen_recipient_vectors.py vectors OUT.json
      writes the committed vectors (vectors/nitro-recipient/vectors.json):
      a fixed test RSA-2048 key (made once here; test-only), valid cases in
      every encoding and cases that must be refused, each with the error
      the reader must name.
  gen_recipient_vectors.py seeds VECTORS.json OUT_DIR
      writes the cargo-fuzz seeds of `nitro_recipient` (fuzz/seeds/) from
      the committed vectors: the 32-byte and one-byte plaintexts in every
      encoding, the explicit empty label, and every refused case.
  gen_recipient_vectors.py live
      reads JSON {"spki": [hex, ...]} on stdin (public keys made by the
      Rust test) and writes {"cases": [{"plaintext": hex, "ber": hex}, ...]}
      with one fresh structure per key: the live differential test.
"""
import json
import os
import sys

from asn1crypto import algos, cms, core, x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


# ---------------------------------------------------------------------------
# CMS EnvelopedData, DER (asn1crypto)
# ---------------------------------------------------------------------------

def oaep_params(hash_name="sha256", mgf_hash="sha256", label=None, explicit=True):
    if not explicit:
        return None
    params = {
        "hash_algorithm": {"algorithm": hash_name},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": mgf_hash}},
    }
    if label is not None:
        params["p_source_algorithm"] = {"algorithm": "p_specified", "parameters": label}
    return algos.RSAESOAEPParams(params)


def enveloped(public_key, plaintext, *, ski=b"\x11" * 32, version=2, ri_version=2,
              oaep_hash=hashes.SHA256(), params=None, cek=None, iv=None,
              content_alg="aes256_cbc", content_type="data", recipients=1,
              rid="ski", pad=True, content_type_outer="enveloped_data",
              unprotected=False, iv_written_len=16):
    cek = cek if cek is not None else os.urandom(32)
    iv = iv if iv is not None else os.urandom(16)
    if pad:
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
    else:
        padded = plaintext
    key_len = {"aes256_cbc": 32, "aes128_cbc": 16}[content_alg]
    encryptor = Cipher(algorithms.AES(cek[:key_len]), modes.CBC(iv)).encryptor()
    content = encryptor.update(padded) + encryptor.finalize()
    encrypted_key = public_key.encrypt(
        cek,
        asym_padding.OAEP(mgf=asym_padding.MGF1(algorithm=oaep_hash),
                          algorithm=oaep_hash, label=None),
    )
    if params is None:
        params = oaep_params()
    if rid == "ski":
        rid_value = cms.RecipientIdentifier(name="subject_key_identifier", value=ski)
    else:
        rid_value = cms.RecipientIdentifier(name="issuer_and_serial_number", value={
            "issuer": x509.Name.build({"common_name": "test"}), "serial_number": 7})
    ktri = cms.KeyTransRecipientInfo({
        "version": ri_version,
        "rid": rid_value,
        "key_encryption_algorithm": {"algorithm": "rsaes_oaep", "parameters": params},
        "encrypted_key": encrypted_key,
    })
    infos = [cms.RecipientInfo(name="ktri", value=ktri) for _ in range(recipients)]
    env = {
        "version": version,
        "recipient_infos": infos,
        "encrypted_content_info": {
            "content_type": content_type,
            "content_encryption_algorithm": {"algorithm": content_alg,
                                             "parameters": iv[:iv_written_len]},
            "encrypted_content": content,
        },
    }
    if unprotected:
        env["unprotected_attrs"] = [{"type": "1.2.3.4", "values": [core.OctetString(b"x")]}]
    info = cms.ContentInfo({"content_type": content_type_outer, "content": cms.EnvelopedData(env)})
    return info.dump(force=True)


# ---------------------------------------------------------------------------
# DER -> BER re-encoding
# ---------------------------------------------------------------------------

def parse_der(data, pos=0):
    """One DER TLV at pos: (tag, constructed, body, end)."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        length, start = first, pos + 2
    else:
        n = first & 0x7F
        length = int.from_bytes(data[pos + 2:pos + 2 + n], "big")
        start = pos + 2 + n
    return tag, bool(tag & 0x20), data[start:start + length], start + length


def children(body):
    out, pos = [], 0
    while pos < len(body):
        tag, constructed, inner, pos = parse_der(body, pos)
        out.append((tag, constructed, inner))
    return out


def length_bytes(n, wide):
    if wide:  # non-minimal long form: always four length octets
        return bytes([0x84]) + n.to_bytes(4, "big")
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body, style):
    if style.get("indefinite") and tag & 0x20:
        return bytes([tag, 0x80]) + body + b"\x00\x00"
    return bytes([tag]) + length_bytes(len(body), style.get("wide", False)) + body


def chunk_octets(tag, value, style):
    """An OCTET STRING value (primitive tag `tag`) as constructed chunks."""
    size = style["chunk"]
    parts = [value[i:i + size] for i in range(0, len(value), size)] or [b""]
    encoded = b""
    for i, part in enumerate(parts):
        if style.get("nested") and i % 2 == 1:
            # a chunk that is itself a constructed OCTET STRING of two chunks
            half = len(part) // 2
            inner = tlv(0x04, part[:half], style) + tlv(0x04, part[half:], style)
            encoded += tlv(0x24, inner, style)
        else:
            encoded += tlv(0x04, part, style)
    return tlv(tag | 0x20, encoded, style)


def reencode(tag, constructed, body, style, path=()):
    if constructed:
        inner = b"".join(reencode(t, c, b, style, path + (tag,)) for t, c, b in children(body))
        return tlv(tag, inner, style)
    chunkable = tag == 0x04 or (tag == 0x80 and len(path) >= 2)
    if style.get("chunk") and chunkable and len(body) > style.get("min_chunk_len", 0):
        return chunk_octets(tag, body, style)
    return tlv(tag, body, style)


def to_ber(der, **style):
    tag, constructed, body, end = parse_der(der)
    assert end == len(der)
    return reencode(tag, constructed, body, style)


# ---------------------------------------------------------------------------
# The committed vectors
# ---------------------------------------------------------------------------

STYLES = {
    "der": {},
    "indefinite": {"indefinite": True},
    "indefinite-chunked-16": {"indefinite": True, "chunk": 16},
    "indefinite-chunked-7-nested": {"indefinite": True, "chunk": 7, "nested": True},
    "definite-chunked-100": {"chunk": 100},
    "non-minimal-lengths": {"wide": True},
    "non-minimal-indefinite-chunked": {"wide": True, "indefinite": True, "chunk": 33},
}


def pkcs8(key):
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def vectors(out_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key()
    cases = []

    def add(name, ber, plaintext=None, error=None):
        cases.append({"name": name, "ber": ber.hex(),
                      "plaintext": plaintext.hex() if plaintext is not None else None,
                      "error": error})

    # Valid: a 32-byte data key (what an attested unwrap opens), and
    # other lengths (block-aligned: a whole padding block), in every style.
    for pt_name, plaintext in [("data-key-32", os.urandom(32)), ("empty", b""),
                               ("one-byte", b"\x5a"), ("15-bytes", os.urandom(15)),
                               ("4096-bytes", os.urandom(4096))]:
        der = enveloped(pub, plaintext)
        for style_name, style in STYLES.items():
            add(f"valid/{pt_name}/{style_name}", to_ber(der, **style), plaintext=plaintext)
    # Explicit empty label (pSourceAlgorithm pSpecified '').
    plaintext = os.urandom(32)
    add("valid/p-specified-empty-label",
        to_ber(enveloped(pub, plaintext, params=oaep_params(label=b"")), indefinite=True),
        plaintext=plaintext)

    ind = {"indefinite": True, "chunk": 16}
    pt = os.urandom(32)
    # Opaque: the wrong key, tampered bytes, bad padding, a short CEK.
    add("refused/other-recipient-key",
        to_ber(enveloped(other.public_key(), pt), **ind), error="DecryptionFailed")
    der = bytearray(enveloped(pub, pt))
    der[-1] ^= 1  # last ciphertext byte: padding garbled
    add("refused/tampered-content", to_ber(bytes(der), **ind), error="DecryptionFailed")
    add("refused/unpadded-content", to_ber(enveloped(pub, os.urandom(32), pad=False), **ind),
        error="DecryptionFailed")
    add("refused/oaep-sha1-encrypted-but-labelled-sha256",
        to_ber(enveloped(pub, pt, oaep_hash=hashes.SHA1()), **ind), error="DecryptionFailed")
    # Named: every structural field KMS never writes otherwise.
    add("refused/oaep-sha1-params",
        to_ber(enveloped(pub, pt, oaep_hash=hashes.SHA1(),
                         params=oaep_params("sha1", "sha1")), **ind),
        error="KeyEncryptionAlgorithm")
    add("refused/oaep-sha384-params",
        to_ber(enveloped(pub, pt, oaep_hash=hashes.SHA384(),
                         params=oaep_params("sha384", "sha384")), **ind),
        error="KeyEncryptionAlgorithm")
    add("refused/oaep-mgf1-sha1",
        to_ber(enveloped(pub, pt, params=oaep_params("sha256", "sha1")), **ind),
        error="KeyEncryptionAlgorithm")
    add("refused/oaep-label",
        to_ber(enveloped(pub, pt, params=oaep_params(label=b"label")), **ind),
        error="KeyEncryptionAlgorithm")
    add("refused/aes128-cbc",
        to_ber(enveloped(pub, pt, content_alg="aes128_cbc"), **ind),
        error="ContentEncryptionAlgorithm")
    add("refused/two-recipients", to_ber(enveloped(pub, pt, recipients=2), **ind),
        error="RecipientCount")
    add("refused/issuer-and-serial", to_ber(enveloped(pub, pt, rid="issuer"), **ind),
        error="RecipientIdentifier")
    add("refused/enveloped-version-0", to_ber(enveloped(pub, pt, version=0), **ind),
        error="Version")
    add("refused/recipient-version-0", to_ber(enveloped(pub, pt, ri_version=0), **ind),
        error="Version")
    add("refused/iv-8-bytes", to_ber(enveloped(pub, pt, iv_written_len=8), **ind),
        error="IvLength")
    add("refused/content-type-signed-data",
        to_ber(enveloped(pub, pt, content_type="signed_data"), **ind),
        error="EncryptedContentType")
    add("refused/unprotected-attributes", to_ber(enveloped(pub, pt, unprotected=True), **ind),
        error="Unsupported")
    good = to_ber(enveloped(pub, pt), **ind)
    add("refused/truncated", good[:-3], error="Ber")
    add("refused/trailing-byte", good + b"\x00", error="Ber")

    doc = {
        "comment": "CiphertextForRecipient vectors made by crates/custody-kms/tests/"
                   "gen_recipient_vectors.py (Python cryptography + asn1crypto). The RSA "
                   "keys are test keys made for these vectors only.",
        "key_pkcs8": pkcs8(key).hex(),
        "other_key_pkcs8": pkcs8(other).hex(),
        "cases": cases,
    }
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def live():
    request = json.load(sys.stdin)
    out = []
    styles = list(STYLES.values())
    for i, spki_hex in enumerate(request["spki"]):
        pub = serialization.load_der_public_key(bytes.fromhex(spki_hex))
        plaintext = os.urandom(32 if i % 2 == 0 else 1 + i * 37 % 200)
        der = enveloped(pub, plaintext)
        out.append({"plaintext": plaintext.hex(),
                    "ber": to_ber(der, **styles[i % len(styles)]).hex()})
    json.dump({"cases": out}, sys.stdout)


def seeds(vectors_path, out_dir):
    doc = json.load(open(vectors_path))
    for case in doc["cases"]:
        name = case["name"]
        if (name.startswith(("valid/data-key-32/", "valid/one-byte/"))
                or name == "valid/p-specified-empty-label" or case["error"]):
            with open(os.path.join(out_dir, name.replace("/", "_")), "wb") as f:
                f.write(bytes.fromhex(case["ber"]))


if __name__ == "__main__":
    if sys.argv[1:2] == ["vectors"]:
        vectors(sys.argv[2])
    elif sys.argv[1:2] == ["seeds"]:
        seeds(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["live"]:
        live()
    else:
        sys.exit(__doc__)

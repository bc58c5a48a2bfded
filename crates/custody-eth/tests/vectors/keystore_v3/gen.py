#!/usr/bin/env python3
"""Interop vectors for custody-eth's Web3 Secret Storage v3 keystores.

An implementation independent of ours (eth-account / eth-keyfile, which use
pycryptodome's scrypt and AES-CTR, hashlib's PBKDF2 and eth-hash's keccak)
writes and reads every file here.

    pip install eth-account eth-keyfile
    python3 gen.py generate   # (re)writes eth_account/, edge/, invalid/
    python3 gen.py verify     # checks every committed file with eth-keyfile,
                              # including ours/ (written by custody-eth's
                              # `#[ignore]` test `export_vectors`)

`generate` draws fresh salts and IVs, so re-running it changes the files;
the committed ones are the ones the Rust tests read. `verify` changes
nothing and exits non-zero on any disagreement.

Index entries: {file, password, privateKey, address, kdf, ...}; `password`
is the UTF-8 text whose bytes are the password, `privateKey` and `address`
are lower-case hex without 0x, `address` computed here by eth-account.
"""

import json
import os
import sys
import uuid

import eth_account
import eth_keyfile
from eth_account import Account
from eth_keyfile import decode_keyfile_json
from eth_keyfile import keyfile as kf
from eth_utils import keccak

HERE = os.path.dirname(os.path.abspath(__file__))

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

KEYS = {
    # EIP-155's example key.
    "eip155": "46" * 32,
    # anvil / hardhat accounts #0 and #1.
    "anvil0": "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "anvil1": "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    # The smallest and the largest valid scalars.
    "one": "00" * 31 + "01",
    "n_minus_1": "%064x" % (SECP256K1_N - 1),
    # A key with a leading zero byte (the ciphertext must stay 32 bytes).
    "leading_zero": "00" + keccak(b"custody leading zero").hex()[2:],
}

PASSWORDS = {
    "empty": "",
    "plain": "testpassword",
    "unicode": "p\u00e4ssw\u00f6rd \U0001f511 \u5bc6\u7801",
    "trailing_space": "trailing space ",
    # Longer than HMAC-SHA-256's 64-byte block: PBKDF2 hashes it first.
    "long": "correct horse battery staple " * 3 + "\u00e9t\u00e9",
    "whitespace": "  tab\tand spaces  ",
}


def address_of(priv_hex):
    return Account.from_key(bytes.fromhex(priv_hex)).address[2:].lower()


def write(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def read(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def kdf_summary(doc):
    crypto = doc.get("crypto") or doc.get("Crypto")
    p = crypto["kdfparams"]
    if crypto["kdf"] == "scrypt":
        return "scrypt n=%d r=%d p=%d" % (p["n"], p["r"], p["p"])
    return "pbkdf2 c=%d" % p["c"]


# --- eth-account's own writer -------------------------------------------------

ETH_ACCOUNT_CASES = [
    # name, key, password, kdf, work factor, scrypt p
    ("scrypt_standard", "eip155", "plain", "scrypt", 262144, 1),
    ("scrypt_light_p6_empty_password", "anvil0", "empty", "scrypt", 4096, 6),
    ("scrypt_n8192_unicode", "one", "unicode", "scrypt", 8192, 1),
    ("pbkdf2_262144_trailing_space", "n_minus_1", "trailing_space", "pbkdf2", 262144, None),
    ("pbkdf2_long_password_leading_zero_key", "leading_zero", "long", "pbkdf2", 10000, None),
    ("scrypt_light_p6_whitespace", "anvil1", "whitespace", "scrypt", 4096, 6),
]


def generate_eth_account():
    out = os.path.join(HERE, "eth_account")
    os.makedirs(out, exist_ok=True)
    index = []
    for name, key, pw, kdf, work, p in ETH_ACCOUNT_CASES:
        saved_p = kf.SCRYPT_P
        try:
            if p is not None:
                # eth-keyfile fixes p = 1; geth's --lightkdf uses p = 6.
                kf.SCRYPT_P = p
            doc = Account.encrypt(bytes.fromhex(KEYS[key]), PASSWORDS[pw], kdf=kdf, iterations=work)
        finally:
            kf.SCRYPT_P = saved_p
        write(os.path.join(out, name + ".json"), doc)
        index.append(
            {
                "file": name + ".json",
                "password": PASSWORDS[pw],
                "privateKey": KEYS[key],
                "address": address_of(KEYS[key]),
                "kdf": kdf_summary(doc),
            }
        )
    write(os.path.join(out, "index.json"), {
        "generator": "eth-account %s / eth-keyfile %s: Account.encrypt (p=6 by setting eth_keyfile.keyfile.SCRYPT_P)"
        % (eth_account.__version__ if hasattr(eth_account, "__version__") else "?", eth_keyfile_version()),
        "vectors": index,
    })


def eth_keyfile_version():
    try:
        from importlib.metadata import version

        return version("eth-keyfile")
    except Exception:  # pragma: no cover
        return "?"


# --- hand-built files, from eth-keyfile's primitives ----------------------------


def craft(priv, password, kdf, params, iv=None, salt=None):
    """A v3 document built from eth-keyfile's KDF/AES helpers, so that the
    edge cases (IVs, salts, key values) are chosen here."""
    pw = password.encode("utf-8")
    salt = os.urandom(32) if salt is None else salt
    iv = os.urandom(16) if iv is None else iv
    if kdf == "scrypt":
        dk = kf._scrypt_hash(pw, salt=salt, n=params["n"], r=params["r"], p=params["p"], buflen=32)
        kdfparams = {"dklen": 32, "n": params["n"], "r": params["r"], "p": params["p"], "salt": salt.hex()}
    else:
        dk = kf._pbkdf2_hash(pw, "sha256", salt, params["c"], 32)
        kdfparams = {"c": params["c"], "dklen": 32, "prf": "hmac-sha256", "salt": salt.hex()}
    ct = kf.encrypt_aes_ctr(priv, dk[:16], int.from_bytes(iv, "big"))
    mac = keccak(dk[16:32] + ct)
    return {
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": iv.hex()},
            "ciphertext": ct.hex(),
            "kdf": kdf,
            "kdfparams": kdfparams,
            "mac": mac.hex(),
        },
        "id": str(uuid.uuid4()),
        "version": 3,
    }


def upper_0x(h):
    return "0x" + h.upper()


def generate_edge():
    out = os.path.join(HERE, "edge")
    os.makedirs(out, exist_ok=True)
    index = []

    def add(name, doc, key, pw, note):
        write(os.path.join(out, name + ".json"), doc)
        index.append({
            "file": name + ".json",
            "password": PASSWORDS[pw],
            "privateKey": KEYS[key],
            "address": address_of(KEYS[key]),
            "kdf": kdf_summary(doc),
            "note": note,
        })

    # The CTR counter starts at 2^128 - 1 and wraps to 0 for the second block.
    doc = craft(bytes.fromhex(KEYS["eip155"]), PASSWORDS["plain"], "scrypt",
                {"n": 16, "r": 8, "p": 1}, iv=b"\xff" * 16)
    doc["address"] = address_of(KEYS["eip155"])
    add("iv_counter_wraps", doc, "eip155", "plain", "iv = ff..ff: the counter wraps modulo 2^128")

    # geth's old capitalised "Crypto", 0x-prefixed upper-case hex everywhere,
    # an EIP-55 address with 0x, and members this format does not define.
    doc = craft(bytes.fromhex(KEYS["anvil0"]), PASSWORDS["unicode"], "pbkdf2", {"c": 16})
    crypto = doc.pop("crypto")
    crypto["cipherparams"]["iv"] = upper_0x(crypto["cipherparams"]["iv"])
    crypto["ciphertext"] = upper_0x(crypto["ciphertext"])
    crypto["mac"] = upper_0x(crypto["mac"])
    crypto["kdfparams"]["salt"] = upper_0x(crypto["kdfparams"]["salt"])
    doc["Crypto"] = crypto
    doc["address"] = Account.from_key(bytes.fromhex(KEYS["anvil0"])).address
    doc["x-ethers"] = {"client": "ethers.js", "gethFilename": "UTC--2020-01-01T00-00-00.0Z--x", "version": "0.1"}
    doc["name"] = "extra members are ignored"
    add("capital_crypto_0x_uppercase_hex_extras", doc, "anvil0", "unicode",
        "'Crypto', 0x + upper-case hex, checksummed 0x address, unknown members")

    # No address, no id, a 16-byte salt (eth-keyfile's default) and the
    # wiki's r = 1, p = 8 shape at a small n.
    doc = craft(bytes.fromhex(KEYS["leading_zero"]), PASSWORDS["trailing_space"], "scrypt",
                {"n": 1024, "r": 1, "p": 8}, salt=os.urandom(16))
    del doc["id"]
    add("no_address_no_id_short_salt", doc, "leading_zero", "trailing_space",
        "no address, no id, 16-byte salt, r=1 p=8")

    # An empty salt and one PBKDF2 iteration: weak, but a valid file.
    doc = craft(bytes.fromhex(KEYS["one"]), PASSWORDS["empty"], "pbkdf2", {"c": 1}, salt=b"")
    doc["address"] = address_of(KEYS["one"])
    add("empty_salt_c1", doc, "one", "empty", "empty salt, c=1")

    write(os.path.join(out, "index.json"), {
        "generator": "gen.py craft(): eth-keyfile %s primitives (_scrypt_hash/_pbkdf2_hash/encrypt_aes_ctr) + eth-utils keccak"
        % eth_keyfile_version(),
        "vectors": index,
    })


def generate_invalid():
    out = os.path.join(HERE, "invalid")
    os.makedirs(out, exist_ok=True)
    index = []
    tiny = {"n": 2, "r": 8, "p": 1}
    pw = "invalid"

    def add(name, doc, error, note):
        write(os.path.join(out, name + ".json"), doc)
        index.append({"file": name + ".json", "password": pw, "expectedError": error, "note": note})

    for name, value in [
        ("key_zero", 0),
        ("key_equal_to_order", SECP256K1_N),
        ("key_all_ones", 2**256 - 1),
    ]:
        doc = craft(value.to_bytes(32, "big"), pw, "scrypt", tiny)
        add(name, doc, "InvalidPrivateKey", "a correct MAC over 32 bytes that are not a secp256k1 secret key")

    doc = craft(bytes.fromhex(KEYS["eip155"]), pw, "scrypt", tiny)
    doc["address"] = address_of(KEYS["anvil0"])
    add("address_mismatch", doc, "KeystoreAddressMismatch", "the key is eip155's, the address anvil0's")

    checksummed = Account.from_key(bytes.fromhex(KEYS["eip155"])).address[2:]
    i = next(i for i, c in enumerate(checksummed) if c.isalpha())
    flipped = checksummed[:i] + checksummed[i].swapcase() + checksummed[i + 1:]
    doc = craft(bytes.fromhex(KEYS["eip155"]), pw, "scrypt", tiny)
    doc["address"] = flipped
    add("address_bad_checksum", doc, "AddressChecksum", "mixed-case address with one letter's case flipped")

    write(os.path.join(out, "index.json"), {
        "generator": "gen.py craft(): eth-keyfile %s primitives + eth-utils keccak" % eth_keyfile_version(),
        "vectors": index,
    })


# --- verification ----------------------------------------------------------------


class Checker:
    def __init__(self):
        self.failures = 0
        self.passed = 0

    def check(self, label, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failures += 1
            print("FAIL", label, detail)


def decrypt_ok(c, label, doc, password, priv, address):
    """eth-keyfile decrypts it to `priv`, and `address` is that key's."""
    try:
        got = decode_keyfile_json(doc, password.encode("utf-8")).hex()
    except Exception as e:  # noqa: BLE001
        c.check(label, False, "eth-keyfile refused: %r" % e)
        return
    c.check(label + " key", got == priv, got)
    c.check(label + " address", address_of(priv) == address)
    stated = doc.get("address")
    if stated is not None:
        c.check(label + " stated address", stated.lower().removeprefix("0x") == address)


def verify():
    c = Checker()

    spec = read(os.path.join(HERE, "spec_vectors.json"))
    for v in spec["vectors"]:
        decrypt_ok(c, "spec " + v["name"], v["json"], v["password"], v["privateKey"], v["address"])
    for v in spec["rejected"]:
        # eth-keyfile (like geth) decrypts these short keys; we refuse them.
        got = decode_keyfile_json(v["json"], v["password"].encode()).hex()
        c.check("spec " + v["name"], got == v["privateKey"], got)
    for v in spec["errata"]:
        try:
            decode_keyfile_json(v["json"], v["password"].encode())
            c.check("erratum " + v["name"], False, "unexpectedly decrypted")
        except ValueError:
            c.check("erratum " + v["name"], True)

    for sub in ["eth_account", "edge", "ours"]:
        index_path = os.path.join(HERE, sub, "index.json")
        if not os.path.exists(index_path):
            print("missing", index_path)
            c.failures += 1
            continue
        index = read(index_path)
        for v in index["vectors"]:
            doc = read(os.path.join(HERE, sub, v["file"]))
            decrypt_ok(c, sub + "/" + v["file"], doc, v["password"], v["privateKey"], v["address"])
            if sub == "ours":
                # eth-account's own entry point, as a user would call it.
                got = Account.decrypt(doc, v["password"]).hex().removeprefix("0x")
                c.check(sub + "/" + v["file"] + " Account.decrypt", got == v["privateKey"], got)
                c.check(sub + "/" + v["file"] + " lower-case address without 0x",
                        doc["address"] == v["address"])
                c.check(sub + "/" + v["file"] + " kdf", kdf_summary(doc) == v["kdf"], kdf_summary(doc))

    index = read(os.path.join(HERE, "invalid", "index.json"))
    for v in index["vectors"]:
        doc = read(os.path.join(HERE, "invalid", v["file"]))
        # The MAC is right: eth-keyfile, which checks neither the scalar nor
        # the address, decrypts every one of them.
        try:
            decode_keyfile_json(doc, v["password"].encode())
            c.check("invalid/" + v["file"] + " MAC", True)
        except Exception as e:  # noqa: BLE001
            c.check("invalid/" + v["file"] + " MAC", False, repr(e))

    print("%d checks passed, %d failed" % (c.passed, c.failures))
    return c.failures == 0


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else "verify"
    if cmd == "generate":
        generate_eth_account()
        generate_edge()
        generate_invalid()
        print("generated; now run: python3 gen.py verify")
    elif cmd == "verify":
        sys.exit(0 if verify() else 1)
    else:
        sys.exit("usage: gen.py generate|verify")


if __name__ == "__main__":
    main()

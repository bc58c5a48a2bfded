"""Backends and imported keys (issue #19): an eth-account v3 file imported
and signed with by ``key_id=``; keystores whose KEK is in AWS KMS (the
emulator) or on a PKCS#11 token (SoftHSM2), and external signing keys there
(``key="aws-kms:..."``, ``key="pkcs11:..."``) behind the keystore's gates.

The KMS tests are skipped only when ``CUSTODY_TEST_KMS_ENDPOINT`` or
``CUSTODY_TEST_PYTHON`` is unset, the PKCS#11 ones when
``CUSTODY_TEST_PKCS11_MODULE`` is; ``.ci/run`` sets them all.
"""

from __future__ import annotations

import shutil
import json
import os
import subprocess
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

import custody
from custody.errors import BadInput, NotFound, TotpRequired, WrongPassphrase

from conftest import MNEMONIC, PASSPHRASE, oracle_account

TX = {
    "type": "0x2",
    "chainId": "0x1",
    "nonce": "0x7",
    "to": "0x3535353535353535353535353535353535353535",
    "value": "0xde0b6b3a7640000",
    "data": "0xdeadbeef",
    "gas": "0x5208",
    "maxFeePerGas": "0x4a817c800",
    "maxPriorityFeePerGas": "0x3b9aca00",
    "accessList": [],
}
TYPED = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "chainId", "type": "uint256"},
        ],
        "Mail": [{"name": "contents", "type": "string"}],
    },
    "primaryType": "Mail",
    "domain": {"name": "Ether Mail", "chainId": 1},
    "message": {"contents": "Hello, Bob!"},
}
SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")


def test_an_eth_account_v3_file_imports_and_signs_by_key_id(fresh: custody.Keystore) -> None:
    account = Account.from_key(SECRET)
    v3 = Account.encrypt(SECRET, "v3 password", kdf="pbkdf2", iterations=1024)
    with pytest.raises(WrongPassphrase):
        fresh.import_keystore_v3(v3, "not the password")
    with pytest.raises(BadInput) as e:
        fresh.import_keystore_v3({"version": 3}, "v3 password")
    assert e.value.message.startswith("json: ")

    key_id = fresh.import_keystore_v3(json.dumps(v3), "v3 password")
    assert isinstance(key_id, str) and key_id

    derived = fresh.derive(key_id=key_id)
    assert derived.address == account.address
    assert derived.key_id == key_id and derived.key is None and derived.path is None

    signed = fresh.sign_message(b"hello", key_id=key_id)
    want = Account.sign_message(encode_defunct(b"hello"), SECRET)
    assert signed.signature == bytes(want.signature)
    assert signed.address == account.address

    tx = fresh.sign_transaction(TX, key_id=key_id)
    want_tx = Account.sign_transaction(
        {
            "type": 2,
            "chainId": 1,
            "nonce": 7,
            "to": TX["to"],
            "value": 10**18,
            "data": "0xdeadbeef",
            "gas": 21000,
            "maxFeePerGas": 20 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "accessList": [],
        },
        SECRET,
    )
    assert tx.raw_transaction == bytes(want_tx.raw_transaction)
    assert tx.sender == account.address

    typed = fresh.sign_typed_data(TYPED, key_id=key_id)
    want_typed = Account.sign_message(encode_typed_data(full_message=TYPED), SECRET)
    assert typed.signature == bytes(want_typed.signature)

    with pytest.raises(NotFound):
        fresh.sign_message(b"x", key_id="no-such-key")
    with pytest.raises(BadInput) as e:
        fresh.derive(wallet="a", index=0, key_id=key_id)
    assert e.value.message == "use exactly one of wallet and index, path, key_id, key"


def test_bad_backend_uris_are_bad_input(fresh: custody.Keystore, tmp_path: Path) -> None:
    for key, message in [
        ("passphrase", "key: expected aws-kms:KEY or pkcs11:token=LABEL;object=LABEL"),
        ("file:/k", "key: expected passphrase, aws-kms:KEY or pkcs11:token=LABEL;object=LABEL"),
        ("pkcs11:token=t", "key: the pkcs11: URI names no object (object=LABEL)"),
    ]:
        with pytest.raises(BadInput) as e:
            fresh.sign_message(b"x", key=key)
        assert e.value.message == message
    with pytest.raises(BadInput) as e:
        custody.Keystore.open(fresh.path)
    assert e.value.message == "passphrase: required for a keystore whose KEK is its passphrase"
    with pytest.raises(BadInput) as e:
        custody.Keystore.create(tmp_path / "k", kek="aws-kms:")
    assert e.value.message.startswith("kek: aws-kms:KEY needs a key id")


# ------------------------------------------------------------------ PKCS#11

USER_PIN = "user-pin-1234"


@pytest.fixture(scope="session")
def token(tmp_path_factory):
    """One SoftHSM token for the session, with an AES KEK (``root-kek``)
    and a secp256k1 key (``signer``) made by OpenSC's pkcs11-tool: made
    before this process loads the module (SoftHSM reads its tokens once,
    when a process initializes it)."""
    module = os.environ.get("CUSTODY_TEST_PKCS11_MODULE")
    if not module:
        pytest.skip("set CUSTODY_TEST_PKCS11_MODULE and SOFTHSM2_CONF")
    tool = shutil.which("pkcs11-tool")
    if not tool:
        pytest.skip("pkcs11-tool (OpenSC) is needed to make keys on the token")
    label = f"py-{os.getpid()}"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label,
         "--so-pin", "so-pin-0000", "--pin", USER_PIN],
        check=True, capture_output=True,
    )
    base = [tool, "--module", module, "--token-label", label, "--login", "--pin", USER_PIN]
    subprocess.run(base + ["--keygen", "--key-type", "AES:32", "--label", "root-kek",
                           "--usage-wrap"], check=True, capture_output=True)
    subprocess.run(base + ["--keypairgen", "--key-type", "EC:secp256k1", "--label", "signer",
                           "--usage-sign"], check=True, capture_output=True)
    pin = tmp_path_factory.mktemp("pin") / "pin"
    pin.write_text(USER_PIN + "\n")
    return label, f"?module-path={module}&pin-source=file:{pin}"


def test_a_pkcs11_token_holds_no_key_yet_and_then_refuses_cleanly(token) -> None:
    label, query = token
    with pytest.raises(NotFound):
        custody.Keystore.create(
            Path(os.environ.get("TMPDIR", "/tmp")) / f"never-{label}",
            MNEMONIC,
            kek=f"pkcs11:token={label};object=missing{query}",
            light_kdf=True,
        )


# ------------------------------------------------------------------ AWS KMS


@pytest.fixture()
def kms(monkeypatch):
    endpoint = os.environ.get("CUSTODY_TEST_KMS_ENDPOINT")
    python = os.environ.get("CUSTODY_TEST_PYTHON")
    if not endpoint or not python:
        pytest.skip("set CUSTODY_TEST_KMS_ENDPOINT (moto) and CUSTODY_TEST_PYTHON (boto3)")
    for k, v in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDCUSTODYTEST",
        "AWS_SECRET_ACCESS_KEY": "custody-test-secret-key-not-real",
        "AWS_CONFIG_FILE": "/nonexistent/custody-test",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/custody-test",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(k, v)

    def create_key(spec: str, usage: str) -> str:
        script = (
            "import boto3\n"
            f"c=boto3.client('kms',endpoint_url='{endpoint}',region_name='us-east-1',"
            "aws_access_key_id='AKIDCUSTODYTEST',aws_secret_access_key='x')\n"
            f"print(c.create_key(KeySpec='{spec}',KeyUsage='{usage}')['KeyMetadata']['KeyId'])"
        )
        out = subprocess.run([python, "-c", script], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    return create_key


def test_a_kms_kek_and_a_kms_signing_key(kms, tmp_path: Path) -> None:
    kek = "aws-kms:" + kms("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    signing = "aws-kms:" + kms("ECC_SECG_P256K1", "SIGN_VERIFY")
    path = tmp_path / "ks"
    made = custody.Keystore.create(path, None, MNEMONIC, kek=kek, light_kdf=True)
    want = oracle_account("m/44'/60'/0'/0/0").address
    assert made.derive(path="m/44'/60'/0'/0/0").address == want

    # Opened with no passphrase: KMS unwraps the master seed.
    ks = custody.Keystore.open(path)
    assert ks.derive(path="m/44'/60'/0'/0/0").address == want
    assert ks.sign_message(b"m", path="m/44'/60'/0'/0/0").signature == bytes(
        oracle_account("m/44'/60'/0'/0/0").sign_message(encode_defunct(b"m")).signature
    )

    derived = ks.derive(key=signing)
    assert derived.key == signing and derived.key_id is None
    signed = ks.sign_message(b"signed inside KMS", key=signing)
    recovered = Account.recover_message(
        encode_defunct(b"signed inside KMS"), signature=signed.signature
    )
    assert recovered == derived.address == signed.address
    tx = ks.sign_transaction(TX, key=signing)
    assert Account.recover_transaction(tx.raw_transaction) == derived.address

    # A key KMS does not have.
    with pytest.raises(NotFound):
        ks.sign_message(b"x", key="aws-kms:alias/custody-py-missing")


def test_a_pkcs11_kek_and_token_key(token, tmp_path: Path) -> None:
    label, query = token
    path = tmp_path / "ks"
    custody.Keystore.create(
        path, None, MNEMONIC, kek=f"pkcs11:token={label};object=root-kek{query}", light_kdf=True
    )
    ks = custody.Keystore.open(path)
    want = oracle_account("m/44'/60'/0'/0/0").address
    assert ks.derive(path="m/44'/60'/0'/0/0").address == want
    signer = f"pkcs11:token={label};object=signer{query}"
    derived = ks.derive(key=signer)
    signed = ks.sign_message(b"signed on the token", key=signer)
    assert Account.recover_message(
        encode_defunct(b"signed on the token"), signature=signed.signature
    ) == derived.address

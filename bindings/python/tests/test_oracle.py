"""Differential tests against eth-account 0.14.0: the same key gives the
same address, the same EIP-191/EIP-712 signatures and the same raw
transactions, byte for byte; v3 keystores we export open in eth-account."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes

import custody
from conftest import MNEMONIC, oracle_account

PATHS = ["m/44'/60'/0'/0/0", "m/44'/60'/0'/0/1", "m/44'/60'/0'/0/7", "m/44'/60'/3'/1/2"]

TO = "0x" + "22" * 20
MAIL = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [
            {"name": "name", "type": "string"},
            {"name": "wallet", "type": "address"},
        ],
        "Mail": [
            {"name": "from", "type": "Person"},
            {"name": "to", "type": "Person"},
            {"name": "contents", "type": "string"},
            {"name": "amounts", "type": "uint256[]"},
            {"name": "tag", "type": "bytes32"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail",
        "version": "1",
        "chainId": 1,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
        # Beyond 2^53 and beyond 2^64: exact, as decimal strings.
        "amounts": [0, 1, 2**53 + 1, 2**200 + 12345],
        "tag": "0x" + "ab" * 32,
    },
}


def transactions(chain_id: int = 1):
    """One transaction of each type 0-3 (type 4 needs an authorization)."""
    return {
        "legacy-pre-155": {
            "nonce": 0,
            "gasPrice": 20 * 10**9,
            "gas": 21000,
            "to": TO,
            "value": 10**18,
            "data": b"",
        },
        "legacy-155": {
            "nonce": 7,
            "gasPrice": 20 * 10**9,
            "gas": 50000,
            "to": TO,
            "value": 12345,
            "data": bytes.fromhex("a9059cbb") + b"\x00" * 64,
            "chainId": chain_id,
        },
        "eip-2930": {
            "type": 1,
            "chainId": chain_id,
            "nonce": 1,
            "gasPrice": 30 * 10**9,
            "gas": 60000,
            "to": TO,
            "value": 0,
            "data": "0xdeadbeef",
            "accessList": [
                {"address": "0x" + "33" * 20, "storageKeys": ["0x" + "00" * 31 + "01", "0x" + "44" * 32]}
            ],
        },
        "eip-1559": {
            "type": 2,
            "chainId": chain_id,
            "nonce": 2,
            "maxFeePerGas": 2 * 10**10,
            "maxPriorityFeePerGas": 10**9,
            "gas": 21000,
            "to": TO,
            # Beyond 2^64 wei: a quantity that does not fit a JSON number.
            "value": 2**70 + 3,
            "data": b"\x01\x02",
            "accessList": [],
        },
        "eip-1559-create": {
            "type": 2,
            "chainId": chain_id,
            "nonce": 3,
            "maxFeePerGas": 2 * 10**10,
            "maxPriorityFeePerGas": 10**9,
            "gas": 100000,
            "value": 0,
            "data": "0x6080604052",
        },
        "eip-4844": {
            "type": 3,
            "chainId": chain_id,
            "nonce": 4,
            "maxFeePerGas": 2 * 10**10,
            "maxPriorityFeePerGas": 10**9,
            "maxFeePerBlobGas": 3 * 10**9,
            "blobVersionedHashes": ["0x01" + "ab" * 31, "0x01" + "cd" * 31],
            "gas": 21000,
            "to": TO,
            "value": 1,
            "data": "0x",
        },
    }


@pytest.mark.parametrize("path", PATHS)
def test_addresses_and_public_keys_by_path_are_eth_accounts(ks, path):
    key = ks.derive(path=path)
    acct = oracle_account(path)
    assert key.address == acct.address
    assert key.path == path
    assert key.public_key == b"\x04" + acct._key_obj.public_key.to_bytes()
    assert (key.wallet, key.index) == (None, None)


def test_the_hardhat_address_is_the_first():
    # An absolute anchor, independent of both implementations' BIP32 code.
    ks_key = oracle_account("m/44'/60'/0'/0/0")
    assert ks_key.address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.mark.parametrize("index", [0, 1, 2**31 - 1])
def test_wallet_keys_are_the_keys_at_their_paths(ks, index):
    key = ks.derive("alice@example.com", index)
    assert (key.wallet, key.index) == ("alice@example.com", index)
    assert key.path.startswith("m/44'/60'/")
    assert key.path.endswith(f"/{index}")
    assert key.address == oracle_account(key.path).address
    assert ks.derive(path=key.path).address == key.address
    # Another wallet's key differs.
    assert ks.derive("bob@example.com", index).address != key.address


@pytest.mark.parametrize(
    "message", [b"hello", b"", bytes(range(256)), "h\u00e9llo \U0001f980", "\n", b"\x19Ethereum"]
)
def test_personal_messages_are_signed_as_eth_account_signs_them(ks, message):
    path = PATHS[1]
    ours = ks.sign_message(message, path=path)
    signable = encode_defunct(text=message) if isinstance(message, str) else encode_defunct(primitive=message)
    theirs = oracle_account(path).sign_message(signable)
    assert ours.signature == bytes(theirs.signature)
    assert ours.message_hash == bytes(theirs.message_hash)
    assert (ours.r, ours.s, ours.v) == (theirs.r, theirs.s, theirs.v)
    assert ours.v in (27, 28)
    assert ours.address == Account.recover_message(signable, signature=ours.signature)


def test_typed_data_is_signed_as_eth_account_signs_it(ks):
    path = PATHS[2]
    ours = ks.sign_typed_data(MAIL, path=path)
    signable = encode_typed_data(full_message=MAIL)
    theirs = oracle_account(path).sign_message(signable)
    assert ours.signature == bytes(theirs.signature)
    assert ours.message_hash == bytes(theirs.message_hash)
    assert ours.address == Account.recover_message(signable, signature=ours.signature)
    # JSON text gives the same signature as the dict (big ints as strings).
    text = json.dumps(MAIL, default=str)
    as_text = ks.sign_typed_data(
        text.replace(str(2**200 + 12345), f'"{2**200 + 12345}"').replace(
            str(2**53 + 1), f'"{2**53 + 1}"'
        ),
        path=path,
    )
    assert as_text.signature == ours.signature


@pytest.mark.parametrize("name", list(transactions()))
def test_transactions_are_byte_identical_to_eth_accounts(ks, name):
    tx = transactions()[name]
    path = PATHS[0]
    ours = ks.sign_transaction(tx, path=path)
    theirs = oracle_account(path).sign_transaction(tx)
    assert ours.raw_transaction == bytes(theirs.raw_transaction), name
    assert ours.hash == bytes(theirs.hash)
    assert (ours.r, ours.s, ours.v) == (theirs.r, theirs.s, theirs.v)
    assert ours.sender == oracle_account(path).address
    assert Account.recover_transaction(ours.raw_transaction) == ours.sender
    if name == "legacy-pre-155":
        assert ours.v in (27, 28)
    elif name == "legacy-155":
        assert ours.v in (35 + 2, 36 + 2)  # chain 1: 37 or 38
    else:
        assert ours.v in (0, 1)
        assert ours.raw_transaction[0] == tx["type"]
        decoded = TypedTransaction.from_bytes(HexBytes(ours.raw_transaction)).as_dict()
        assert decoded["nonce"] == tx["nonce"]
        assert decoded["value"] == tx["value"]


def test_a_large_chain_id_gives_eip155_v_beyond_64_bits(ks):
    chain_id = 2**62 + 5
    tx = transactions(chain_id)["legacy-155"]
    ours = ks.sign_transaction(tx, path=PATHS[0])
    theirs = oracle_account(PATHS[0]).sign_transaction(tx)
    assert ours.raw_transaction == bytes(theirs.raw_transaction)
    assert ours.v == theirs.v and ours.v >= 2 * chain_id + 35


def test_an_eip7702_transaction_is_byte_identical_to_eth_accounts(ks):
    path = PATHS[3]
    acct = oracle_account(path)
    # The authorization is signed by an independent key, by eth-account.
    delegate = Account.from_key("0x" + "42" * 32)
    auth = delegate.sign_authorization({"chainId": 1, "address": "0x" + "55" * 20, "nonce": 9})
    tx = {
        "type": 4,
        "chainId": 1,
        "nonce": 5,
        "maxFeePerGas": 2 * 10**10,
        "maxPriorityFeePerGas": 10**9,
        "gas": 100000,
        "to": TO,
        "value": 0,
        "data": "0x",
        "accessList": [],
    }
    theirs = acct.sign_transaction({**tx, "authorizationList": [auth]})
    ours = ks.sign_transaction(
        {
            **tx,
            "authorizationList": [
                {
                    "chainId": auth.chain_id,
                    "address": auth.address,
                    "nonce": auth.nonce,
                    "yParity": auth.y_parity,
                    "r": auth.r,
                    "s": auth.s,
                }
            ],
        },
        path=path,
    )
    assert ours.raw_transaction == bytes(theirs.raw_transaction)
    assert ours.hash == bytes(theirs.hash)
    assert ours.raw_transaction[0] == 4
    assert Account.recover_transaction(ours.raw_transaction) == acct.address


def test_json_text_and_a_dict_sign_the_same_transaction(ks):
    as_dict = ks.sign_transaction(transactions()["eip-1559"], path=PATHS[0])
    text = json.dumps(
        {
            "type": "0x2",
            "chainId": "0x1",
            "nonce": "0x2",
            "maxFeePerGas": hex(2 * 10**10),
            "maxPriorityFeePerGas": hex(10**9),
            "gas": "21000",
            "to": TO,
            "value": hex(2**70 + 3),
            "input": "0x0102",
            "accessList": [],
        }
    )
    as_text = ks.sign_transaction(text, path=PATHS[0])
    assert as_text.raw_transaction == as_dict.raw_transaction
    assert as_text.signing_hash == as_dict.signing_hash


@pytest.mark.parametrize("password", ["pässword", b"raw\xffbytes", bytearray(b"wipe me")])
def test_v3_keystores_we_export_open_in_eth_account(ks, password):
    path = PATHS[1]
    v3 = ks.export_keystore_v3(path=path, password=password, light_kdf=True)
    assert v3["version"] == 3
    assert v3["crypto"]["kdf"] == "scrypt"
    assert v3["crypto"]["kdfparams"]["n"] == 4096
    secret = Account.decrypt(v3, password if isinstance(password, str) else bytes(password))
    assert bytes(secret) == oracle_account(path).key
    assert "0x" + v3["address"].lower().removeprefix("0x") == oracle_account(path).address.lower()
    with pytest.raises(ValueError):
        Account.decrypt(v3, "not the password")


def test_a_standard_v3_export_uses_eth_accounts_default_scrypt(ks):
    v3 = ks.export_keystore_v3(path=PATHS[0], password="pw")
    params = v3["crypto"]["kdfparams"]
    assert (params["n"], params["r"], params["p"]) == (2**18, 8, 1)
    assert bytes(Account.decrypt(v3, "pw")) == oracle_account(PATHS[0]).key


def test_eth_accounts_v3_keystores_decrypt_to_the_key_we_export(ks):
    # The import direction is not in the C ABI (nor here); eth-account's own
    # encryption of our exported key must decrypt to the same key.
    key = ks.export_private_key(path=PATHS[2])
    assert key == oracle_account(PATHS[2]).key
    v3 = Account.encrypt(key, "pw", kdf="scrypt", iterations=2**12)
    assert bytes(Account.decrypt(v3, "pw")) == key

"""The gates, seen from Python: a wallet enrolled for TOTP signs and
exports only with a fresh code (computed here with the standard library),
a code is accepted once and refused as a replay, wrong codes lock the
wallet, and exports that would expose an enrolled wallet are forbidden.
Every refusal is its typed exception."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

import custody
from conftest import MNEMONIC, PASSPHRASE, oracle_account, totp_code, totp_params, wrong_code

TX = {
    "type": 2,
    "chainId": 1,
    "nonce": 0,
    "maxFeePerGas": 2 * 10**10,
    "maxPriorityFeePerGas": 10**9,
    "gas": 21000,
    "to": "0x" + "22" * 20,
    "value": 10**15,
}


def wait_for_a_fresh_step(enrolment, margin: float = 3.0) -> None:
    """Sleeps past a step boundary if one is under ``margin`` seconds away,
    so that a test's codes stay in one step."""
    period = totp_params(enrolment.uri)["period"]
    left = period - time.time() % period
    if left < margin:
        time.sleep(left + 0.1)


def test_an_enrolment_is_an_rfc6238_uri_and_its_secret(fresh):
    e = fresh.totp_register("alice@example.com")
    p = totp_params(e.uri)
    assert e.wallet == "alice@example.com"
    assert p["label"] == "custody:alice@example.com"
    assert p["issuer"] == "custody"
    assert (p["digits"], p["period"], p["algorithm"]) == (6, 30, "sha1")
    assert len(p["secret"]) >= 20
    assert e.secret.rstrip("=") == e.uri.split("secret=")[1].split("&")[0]
    # The secret never shows in a repr.
    assert e.secret not in repr(e) and "secret" not in repr(e)
    assert repr(e) == "TotpEnrolment(wallet=\"alice@example.com\")"


def test_a_code_is_accepted_once_and_refused_as_a_replay(fresh):
    wallet = "alice@example.com"
    e = fresh.totp_register(wallet)
    with pytest.raises(custody.TotpRequired) as no_code:
        fresh.sign_transaction(TX, wallet, 0)
    assert no_code.value.kind == "totp-required"
    assert no_code.value.status == 3
    wait_for_a_fresh_step(e)
    code = totp_code(e.uri)
    signed = fresh.sign_transaction(TX, wallet, 0, code=code)
    # The signature is the one eth-account makes with the wallet's key.
    path = fresh.derive(wallet, 0).path
    assert signed.raw_transaction == bytes(oracle_account(path).sign_transaction(TX).raw_transaction)
    with pytest.raises(custody.TotpReplayed) as replay:
        fresh.sign_transaction(TX, wallet, 0, code=code)
    assert replay.value.kind == "totp-replayed"
    assert code not in str(replay.value)
    # A replay holds for every operation and every key of the wallet.
    with pytest.raises(custody.TotpReplayed):
        fresh.sign_message(b"hi", wallet, 1, code=code)


def test_a_wrong_code_is_invalid_and_repeated_ones_lock_the_wallet(fresh):
    wallet = "mallory"
    e = fresh.totp_register(wallet)
    bad = wrong_code(e.uri)
    with pytest.raises(custody.TotpInvalid) as invalid:
        fresh.sign_message(b"x", wallet, 0, code=bad)
    assert invalid.value.status == 3
    assert bad not in str(invalid.value)
    for _ in range(4):
        with pytest.raises((custody.TotpInvalid, custody.TotpLocked)):
            fresh.sign_message(b"x", wallet, 0, code=bad)
    # Locked now: even the right code is refused.
    with pytest.raises(custody.TotpLocked) as locked:
        fresh.sign_message(b"x", wallet, 0, code=totp_code(e.uri))
    assert locked.value.kind == "totp-locked"
    # Another wallet is not affected.
    assert fresh.sign_message(b"x", "bob", 0).address == fresh.derive("bob", 0).address


def test_every_signing_route_and_export_is_gated(fresh):
    wallet = "carol"
    e = fresh.totp_register(wallet)
    path = fresh.derive(wallet, 3).path
    typed = {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}], "M": [{"name": "n", "type": "uint256"}]},
        "primaryType": "M",
        "domain": {"name": "d"},
        "message": {"n": 1},
    }
    for call in (
        lambda: fresh.sign_message(b"m", wallet, 3),
        lambda: fresh.sign_typed_data(typed, wallet, 3),
        lambda: fresh.sign_transaction(TX, wallet, 3),
        # The same key by its path: the gate knows the wallet's node.
        lambda: fresh.sign_message(b"m", path=path),
        lambda: fresh.export_private_key(wallet, 3),
        lambda: fresh.export_keystore_v3(wallet, 3, password="pw", light_kdf=True),
    ):
        with pytest.raises(custody.TotpRequired):
            call()
    wait_for_a_fresh_step(e)
    key = fresh.export_private_key(wallet, 3, code=totp_code(e.uri))
    assert key == oracle_account(path).key
    assert Account.from_key(key).address == fresh.derive(wallet, 3).address


def test_exports_that_expose_an_enrolled_wallet_are_forbidden(fresh):
    fresh.totp_register("dave")
    node = fresh.derive("dave", 0).path.rsplit("/", 1)[0]
    # The master and the wallet's ancestors expose its node: never exported.
    for ancestor in ("m", "m/44'", "m/44'/60'"):
        with pytest.raises(custody.Forbidden) as forbidden:
            fresh.export_private_key(path=ancestor)
        assert forbidden.value.kind == "forbidden"
        assert forbidden.value.status == 1
        assert "ancestor" in forbidden.value.message
    assert node.startswith("m/44'/60'/")
    # Signing with such a key is allowed: it exposes nothing.
    signed = fresh.sign_message(b"ok", path="m/44'/60'")
    assert signed.address == oracle_account("m/44'/60'").address
    # A key outside every enrolled wallet exports without a code.
    assert fresh.export_private_key(path="m/44'/60'/0'/0/0") == oracle_account("m/44'/60'/0'/0/0").key


def test_enrolment_is_kept_across_reopening_and_rotation_needs_a_code(tmp_path):
    path = tmp_path / "ks"
    first = custody.Keystore.create(path, PASSPHRASE, MNEMONIC, light_kdf=True)
    e = first.totp_register("erin")
    with pytest.raises(custody.AlreadyExists):
        first.totp_register("erin")
    reopened = custody.Keystore.open(path, PASSPHRASE.encode())
    with pytest.raises(custody.TotpRequired):
        reopened.sign_message(b"x", "erin", 0)
    wait_for_a_fresh_step(e)
    rotated = reopened.totp_register("erin", rotate_code=totp_code(e.uri), issuer="Example Bank")
    assert totp_params(rotated.uri)["issuer"] == "Example Bank"
    assert rotated.secret != e.secret
    # The new secret's code signs (the next step's: the rotation spent the
    # current one, and the gate accepts one step of skew); the signature is
    # eth-account's.
    signed = reopened.sign_message(b"x", "erin", 0, code=totp_code(rotated.uri, time.time() + 30))
    key_path = reopened.derive("erin", 0).path
    theirs = oracle_account(key_path).sign_message(encode_defunct(primitive=b"x"))
    assert signed.signature == bytes(theirs.signature)

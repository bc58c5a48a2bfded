"""The Python surface: exceptions named after the stable kinds, secrets
kept out of reprs and messages, the type hints matching the module, the
GIL released while the library works, and arguments checked into typed
errors."""

from __future__ import annotations

import ast
import re
import threading
import time
from importlib import resources
from pathlib import Path

import pytest

import custody
from custody import errors
from conftest import MNEMONIC, PASSPHRASE

PACKAGE = Path(custody.__file__).parent


def camel(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.split("-"))


def test_every_kind_has_its_class_named_in_camel_case():
    assert len(errors.KINDS) == len(errors.__all__) - 1  # all but the base
    for kind, cls in errors.KINDS.items():
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", kind)
        assert cls.__name__ == camel(kind)
        assert cls.KIND == kind
        assert issubclass(cls, custody.CustodyError)
        assert getattr(custody, cls.__name__) is cls
    # The kinds every front end documents (shared/CLI.md, ErrorReport).
    for kind in (
        "bad-input", "wrong-passphrase", "totp-required", "totp-invalid", "totp-replayed",
        "totp-locked", "forbidden", "not-found", "already-exists", "unsupported", "io",
        "access-denied", "key-disabled", "wrong-key-usage", "throttled", "unavailable",
        "policy-denied", "approvals-required", "verdict-invalid", "internal",
    ):
        assert kind in errors.KINDS, kind
    assert issubclass(custody.BadInput, ValueError)


def test_an_unknown_kind_is_the_base_class_with_its_kind():
    e = errors._from_report("quorum-incomplete", "2 of 3 shares", 1)
    assert type(e) is custody.CustodyError
    assert (e.kind, e.message, e.status) == ("quorum-incomplete", "2 of 3 shares", 1)
    assert str(e) == "quorum-incomplete: 2 of 3 shares"
    known = errors._from_report("totp-locked", "locked", 3)
    assert type(known) is custody.TotpLocked and known.status == 3


def test_keystore_errors_are_typed(tmp_path, keystore_dir):
    with pytest.raises(custody.NotFound) as missing:
        custody.Keystore.open(tmp_path / "nothing", PASSPHRASE)
    assert (missing.value.kind, missing.value.status) == ("not-found", 1)
    with pytest.raises(custody.WrongPassphrase) as wrong:
        custody.Keystore.open(keystore_dir, "hunter2-wrong")
    assert wrong.value.status == 3
    assert "hunter2" not in str(wrong.value) and "hunter2" not in repr(wrong.value)
    with pytest.raises(custody.AlreadyExists):
        custody.Keystore.create(keystore_dir, PASSPHRASE, MNEMONIC, light_kdf=True)
    with pytest.raises(custody.BadInput) as bad:
        custody.Keystore.create(tmp_path / "k2", PASSPHRASE, "not a mnemonic at all", light_kdf=True)
    assert bad.value.message == "mnemonic: not a valid BIP39 mnemonic"
    assert "at all" not in str(bad.value)
    with pytest.raises(custody.BadInput, match="wallet_scheme"):
        custody.Keystore.create(tmp_path / "k3", PASSPHRASE, MNEMONIC, light_kdf=True, wallet_scheme="x")
    with pytest.raises(custody.BadInput, match="passphrase: expected str, bytes or bytearray"):
        custody.Keystore.open(keystore_dir, 1234)


def test_passphrases_as_str_bytes_and_bytearray_open_the_same_keystore(keystore_dir):
    xpubs = {
        custody.Keystore.open(keystore_dir, p).xpub
        for p in (PASSPHRASE, PASSPHRASE.encode(), bytearray(PASSPHRASE.encode()))
    }
    assert len(xpubs) == 1
    ks = custody.Keystore.open(keystore_dir, PASSPHRASE)
    assert ks.xpub.startswith("xpub")
    assert re.fullmatch(r"0x[0-9a-f]{8}", ks.fingerprint)
    assert isinstance(ks.path, Path) and ks.path == keystore_dir
    assert repr(ks) == f'Keystore(path="{keystore_dir}")'
    assert PASSPHRASE not in repr(ks)


def test_a_bip39_passphrase_changes_the_keys(tmp_path, ks):
    other = custody.Keystore.create(
        tmp_path / "ks", PASSPHRASE, MNEMONIC, bip39_passphrase="TREZOR", light_kdf=True
    )
    assert other.xpub != ks.xpub
    from eth_account import Account

    expected = Account.from_mnemonic(MNEMONIC, passphrase="TREZOR", account_path="m/44'/60'/0'/0/0")
    assert other.derive(path="m/44'/60'/0'/0/0").address == expected.address


def test_a_generated_mnemonic_is_24_or_the_asked_number_of_words(tmp_path):
    words = custody.generate_mnemonic()
    assert len(words.split()) == 24
    assert len(custody.generate_mnemonic(12).split()) == 12
    assert custody.generate_mnemonic() != words
    with pytest.raises(custody.BadInput, match="word_count"):
        custody.generate_mnemonic(13)
    ks = custody.Keystore.create(tmp_path / "ks", b"pw", words, light_kdf=True)
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    assert ks.derive(path="m/44'/60'/0'/0/0").address == Account.from_mnemonic(words).address
    # With no mnemonic, a fresh one that never leaves the library.
    a = custody.Keystore.create(tmp_path / "a", b"pw", light_kdf=True)
    b = custody.Keystore.create(tmp_path / "b", b"pw", light_kdf=True)
    assert a.xpub != b.xpub


def test_keys_are_named_by_wallet_and_index_or_by_path_only(ks):
    for kwargs, message in (
        ({}, "name a key with wallet and index, or with path"),
        ({"wallet": "a"}, "index: required with wallet"),
        ({"index": 1}, "wallet: required with index"),
        ({"wallet": "a", "index": 0, "path": "m/0"}, "use either wallet and index, or path, not both"),
    ):
        with pytest.raises(custody.BadInput) as e:
            ks.derive(**kwargs)
        assert e.value.message == message
    with pytest.raises(custody.BadInput) as e:
        ks.derive(path="m/44'/60'/x")
    assert e.value.message.startswith("path: ")
    with pytest.raises(OverflowError):
        ks.derive("a", 2**32)


def test_malformed_documents_are_bad_input_naming_the_field(ks):
    path = "m/44'/60'/0'/0/0"
    base = {"type": 2, "chainId": 1, "nonce": 0, "gas": 21000, "to": "0x" + "11" * 20, "value": 0}
    with pytest.raises(custody.BadInput) as e:
        ks.sign_transaction(base, path=path)
    assert e.value.message == "maxPriorityFeePerGas: missing for a type 0x2 transaction"
    with pytest.raises(custody.BadInput, match="float"):
        ks.sign_transaction({**base, "value": 1.5}, path=path)
    with pytest.raises(custody.BadInput, match="no JSON form"):
        ks.sign_transaction({**base, "value": object()}, path=path)
    with pytest.raises(custody.BadInput, match="dict key"):
        ks.sign_transaction({1: 2}, path=path)
    with pytest.raises(custody.BadInput):
        ks.sign_transaction("{not json", path=path)
    with pytest.raises(custody.BadInput):
        ks.sign_transaction({**base, "type": 5, "maxFeePerGas": 1, "maxPriorityFeePerGas": 1}, path=path)
    deep: list = []
    deep.append(deep)
    with pytest.raises(custody.BadInput, match="nested"):
        ks.sign_typed_data({"x": deep}, path=path)
    with pytest.raises(custody.BadInput, match="message: expected bytes or str"):
        ks.sign_message(12, path=path)


def test_the_type_hints_match_the_module():
    assert (PACKAGE / "py.typed").is_file()
    stub = ast.parse((PACKAGE / "_custody.pyi").read_text())
    classes = {n.name: n for n in stub.body if isinstance(n, ast.ClassDef)}
    functions = {n.name for n in stub.body if isinstance(n, ast.FunctionDef)}
    assert set(classes) == {"Keystore", "DerivedKey", "SignedTransaction", "SignedMessage", "TotpEnrolment"}
    assert functions == {"generate_mnemonic"}
    from custody import _custody

    runtime_classes = {
        name for name in dir(_custody) if isinstance(getattr(_custody, name), type)
    }
    assert runtime_classes == set(classes)
    for name, node in classes.items():
        cls = getattr(_custody, name)
        declared = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        public = {m for m in dir(cls) if not m.startswith("_")}
        assert declared == public, name
        assert cls.__module__ == "custody"
    assert resources.files("custody").joinpath("errors.py").is_file()


def test_the_gil_is_released_while_a_kdf_runs(ks):
    # A standard-cost scrypt (n = 2^18) takes a good fraction of a second:
    # a Python thread counting meanwhile makes progress only if the GIL is
    # released for it.
    count = 0
    stop = threading.Event()

    def counter():
        nonlocal count
        while not stop.is_set():
            count += 1

    t = threading.Thread(target=counter)
    t.start()
    try:
        time.sleep(0.05)
        before = count
        started = time.perf_counter()
        v3 = ks.export_keystore_v3(path="m/44'/60'/0'/0/0", password="pw")
        elapsed = time.perf_counter() - started
        during = count - before
    finally:
        stop.set()
        t.join()
    assert v3["crypto"]["kdfparams"]["n"] == 2**18
    # Python's switch interval is 5 ms: a thread starved for the whole KDF
    # would count only what it did before the call took the GIL.
    assert elapsed > 0.05
    assert during > 10_000, (during, elapsed)


def test_threads_share_a_keystore(ks):
    results = {}

    def sign(i: int):
        results[i] = ks.sign_message(f"message {i}", path=f"m/44'/60'/0'/0/{i % 3}")

    threads = [threading.Thread(target=sign, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, signed in results.items():
        again = ks.sign_message(f"message {i}", path=f"m/44'/60'/0'/0/{i % 3}")
        assert signed.signature == again.signature  # RFC 6979: deterministic
    assert len(results) == 12


def test_result_reprs_show_public_data_only(ks):
    key = ks.derive(path="m/44'/60'/0'/0/0")
    assert repr(key) == f"DerivedKey(address=\"{key.address}\", path=\"m/44'/60'/0'/0/0\")"
    signed = ks.sign_message(b"x", path="m/44'/60'/0'/0/0")
    assert repr(signed) == (
        f'SignedMessage(message_hash="0x{signed.message_hash.hex()}", address="{signed.address}")'
    )
    assert custody.__version__ == "0.1.0"

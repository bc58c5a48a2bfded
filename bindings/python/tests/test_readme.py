"""The README's example runs as written, its code typed by a "user" who
reads the authenticator (the stdlib RFC 6238 of conftest), and its
transaction is the one eth-account signs with the same key."""

from __future__ import annotations

import re
from pathlib import Path

from eth_account import Account

from conftest import totp_code

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1
    example = blocks[0]
    assert len(example.strip().splitlines()) <= 12
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    prompts = []

    def user_types_the_code(prompt: str) -> str:
        prompts.append(prompt)
        return totp_code(scope["enrolment"].uri)

    scope["input"] = user_types_the_code
    exec(compile(example, str(README), "exec"), scope)
    assert prompts == ["code: "]  # the wallet was enrolled, so the gate asked
    address, raw = capsys.readouterr().out.split()
    ks, signed, tx = scope["ks"], scope["signed"], scope["tx"]
    assert address == scope["alice"].address
    assert raw == signed.raw_transaction.hex()
    assert Account.recover_transaction(signed.raw_transaction) == address
    # The same transaction, signed by eth-account with the key the gate
    # exports (with a fresh code: the one typed above is spent).
    import time

    key = ks.export_private_key("alice@example.com", 0, code=totp_code(scope["enrolment"].uri, time.time() + 30))
    assert bytes(Account.from_key(key).sign_transaction(tx).raw_transaction) == signed.raw_transaction
    assert (tmp_path / "wallet-keys" / "keystore.json").is_file()

"""Type hints of the extension module ``custody._custody`` (written in Rust).

Every method raises a subclass of :class:`custody.errors.CustodyError`
named after the error's kind; the ones listed under "Raises" are those a
caller is expected to handle.
"""

import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

Secret = Union[str, bytes, bytearray]
"""A passphrase or password: a ``str`` (its UTF-8 bytes), ``bytes`` or a
``bytearray`` (which the caller can clear after the call). The library's own
copy is wiped after use."""

JsonDocument = Union[str, Mapping[str, Any]]
"""JSON text, or Python data with ``bytes`` as 0x-hex and ``int`` of any size."""

__version__: str
"""The version of the custody crates this module was built from."""

def generate_mnemonic(word_count: int = 24) -> str:
    """A fresh English BIP39 mnemonic of 12, 15, 18, 21 or 24 words.

    The one function whose purpose is to return a mnemonic: write it down,
    then give it to :meth:`Keystore.create`.

    Raises:
        BadInput: a word count BIP39 does not define.
    """

class DerivedKey:
    """A key's public data, from :meth:`Keystore.derive`."""

    @property
    def address(self) -> str:
        """The EIP-55 checksummed address."""
    @property
    def public_key(self) -> bytes:
        """The 65-byte uncompressed SEC 1 public key (``0x04 || x || y``)."""
    @property
    def path(self) -> Optional[str]:
        """The full BIP32 path (``m/44'/60'/...``), if the key has one."""
    @property
    def wallet(self) -> Optional[str]:
        """The wallet name, if the key was named by wallet."""
    @property
    def index(self) -> Optional[int]:
        """The key index, if the key was named by wallet."""
    @property
    def key_id(self) -> Optional[str]:
        """The imported key's id, if the key was named by ``key_id``."""
    @property
    def key(self) -> Optional[str]:
        """The external key's URI, if the key was named by ``key``."""


class SignedTransaction:
    """A signed transaction, from :meth:`Keystore.sign_transaction`.

    Field names are eth-account's ``SignedTransaction``'s.
    """

    @property
    def raw_transaction(self) -> bytes:
        """The bytes to broadcast (EIP-2718 typed, or RLP for legacy)."""
    @property
    def hash(self) -> bytes:
        """The transaction hash (keccak256 of :attr:`raw_transaction`)."""
    @property
    def signing_hash(self) -> bytes:
        """The 32-byte digest that was signed."""
    @property
    def sender(self) -> str:
        """The signer's EIP-55 address."""
    @property
    def r(self) -> int:
        """The signature's r."""
    @property
    def s(self) -> int:
        """The signature's s (low-s)."""
    @property
    def v(self) -> int:
        """``v`` as encoded: 0/1 for typed transactions, 27/28 or EIP-155 for legacy."""

class SignedMessage:
    """An EIP-191 or EIP-712 signature, from :meth:`Keystore.sign_message`
    and :meth:`Keystore.sign_typed_data`.

    Field names are eth-account's ``SignedMessage``'s.
    """

    @property
    def message_hash(self) -> bytes:
        """The 32-byte digest that was signed (EIP-191 or EIP-712)."""
    @property
    def signature(self) -> bytes:
        """The 65-byte signature ``r || s || v``, v 27 or 28."""
    @property
    def address(self) -> str:
        """The signer's EIP-55 address."""
    @property
    def r(self) -> int:
        """The signature's r."""
    @property
    def s(self) -> int:
        """The signature's s (low-s)."""
    @property
    def v(self) -> int:
        """27 or 28 (messages carry no chain id)."""

class TotpEnrolment:
    """A wallet's new TOTP secret, from :meth:`Keystore.totp_register`.

    Show it to the user once (the URI as a QR code), then drop it. Its
    ``repr`` names the wallet only.
    """

    @property
    def wallet(self) -> str:
        """The wallet enrolled."""
    @property
    def uri(self) -> str:
        """The ``otpauth://totp/...`` provisioning URI (it holds the secret)."""
    @property
    def secret(self) -> str:
        """The shared secret, RFC 4648 base32 without padding."""

class Keystore:
    """An open keystore: a directory of envelope-encrypted secrets.

    Every signature and export passes the same gates as the ``custody`` CLI
    and the C ABI (``Audited(TotpGate(keystore))``): a wallet enrolled for
    TOTP needs a fresh ``code``, and every outcome lands in the keystore's
    audit log. A key is named by ``wallet`` and ``index``, by ``path``, by
    ``key_id`` (an imported key), or by ``key``: an external key URI,
    ``"aws-kms:KEY"`` or ``"pkcs11:token=LABEL;object=LABEL"``, that never
    leaves its KMS or token and passes the same gates.
    Safe to share between threads; the GIL is released while it works.
    """

    @staticmethod
    def create(
        path: Union[str, "os.PathLike[str]"],
        passphrase: Optional[Secret] = None,
        mnemonic: Optional[str] = None,
        *,
        bip39_passphrase: Optional[str] = None,
        light_kdf: bool = False,
        wallet_scheme: str = "default",
        kek: str = "passphrase",
    ) -> "Keystore":
        """Creates a keystore in directory ``path`` (made if absent).

        Args:
            path: the keystore directory; it must not hold a keystore yet.
            passphrase: the keystore passphrase (its scrypt KEK); needed
                only when ``kek`` is ``"passphrase"``.
            mnemonic: the BIP39 mnemonic of the master seed; None makes a
                fresh 24-word one that never leaves the library (for a
                backup, use :func:`generate_mnemonic` and pass it here).
            bip39_passphrase: the optional BIP39 passphrase ("25th word").
            light_kdf: a cheap scrypt for tests (geth's ``--lightkdf``).
            wallet_scheme: ``"default"`` or ``"fortanix"``: how wallet names
                map to BIP32 paths, fixed for the keystore's life.
            kek: where the key-encryption key lives (the CLI's ``init
                --kek``): ``"passphrase"``, ``"aws-kms:KEY"`` (region,
                credentials and endpoint from the standard AWS environment)
                or ``"pkcs11:token=LABEL;object=LABEL"`` (module from
                ``module-path=`` or ``CUSTODY_PKCS11_MODULE``, PIN from
                ``pin-source=file:`` or ``CUSTODY_PKCS11_PIN``).

        Raises:
            AlreadyExists: ``path`` holds a keystore already.
            BadInput: an invalid mnemonic or wallet scheme.
            Io: the directory cannot be written.
        """
    @staticmethod
    def open(
        path: Union[str, "os.PathLike[str]"], passphrase: Optional[Secret] = None
    ) -> "Keystore":
        """Opens the keystore in directory ``path`` with what holds its KEK:
        ``passphrase`` (needed only for a passphrase KEK), or the AWS KMS
        key or PKCS#11 token key its URI names (configured as ``create``'s
        ``kek``).

        Raises:
            NotFound: no keystore there (or no such KMS key or token).
            WrongPassphrase: the passphrase is wrong.
            BadInput: no passphrase for a passphrase keystore.
            AccessDenied, Unavailable: the KMS or token refused or is
                unreachable.
        """
    def import_keystore_v3(self, json: JsonDocument, password: Secret) -> str:
        """Imports the key of a Web3 Secret Storage v3 file (geth,
        eth-account) under ``password``; returns its key id, for ``key_id=``.

        Raises:
            WrongPassphrase: a wrong password or a tampered file.
            BadInput: not a v3 keystore (the message names the field).
        """
    @property
    def path(self) -> Path:
        """The keystore directory."""
    @property
    def xpub(self) -> str:
        """The master key's BIP32 xpub."""
    @property
    def fingerprint(self) -> str:
        """The master key's 4-byte BIP32 fingerprint, as 0x-hex."""
    def derive(
        self,
        wallet: Optional[str] = None,
        index: Optional[int] = None,
        *,
        path: Optional[str] = None,
        key_id: Optional[str] = None,
        key: Optional[str] = None,
    ) -> DerivedKey:
        """A key's address and public key (public data: no code, no audit).

        Raises:
            BadInput: neither or both of wallet/index and path, or a wallet
                name, index or path the keystore's scheme refuses.
        """
    def totp_register(
        self, wallet: str, *, issuer: Optional[str] = None, rotate_code: Optional[str] = None
    ) -> TotpEnrolment:
        """Enrols ``wallet`` for TOTP; from then on each signature and export
        of its keys needs a fresh code.

        Args:
            wallet: the wallet name (any UTF-8 label).
            issuer: the service name authenticator apps show.
            rotate_code: a current code, to replace an enrolled wallet's secret.

        Raises:
            AlreadyExists: the wallet is enrolled (and no ``rotate_code``).
            TotpInvalid, TotpReplayed, TotpLocked: the rotation's code.
        """
    def sign_transaction(
        self,
        tx: JsonDocument,
        wallet: Optional[str] = None,
        index: Optional[int] = None,
        *,
        path: Optional[str] = None,
        code: Optional[str] = None,
        key_id: Optional[str] = None,
        key: Optional[str] = None,
    ) -> SignedTransaction:
        """Signs one transaction given in Ethereum JSON-RPC form.

        ``tx`` holds ``type`` (0-4; absent is legacy), ``chainId``, ``nonce``,
        ``to``, ``value``, ``data``/``input``, ``gas``, the fees,
        ``accessList``, ``maxFeePerBlobGas`` + ``blobVersionedHashes``,
        ``authorizationList``: the dict eth-account signs works as is.

        Raises:
            BadInput: a malformed transaction (the message names the field).
            TotpRequired, TotpInvalid, TotpReplayed, TotpLocked: the gate.
        """
    def sign_message(
        self,
        message: Union[bytes, str],
        wallet: Optional[str] = None,
        index: Optional[int] = None,
        *,
        path: Optional[str] = None,
        code: Optional[str] = None,
        key_id: Optional[str] = None,
        key: Optional[str] = None,
    ) -> SignedMessage:
        """Signs an EIP-191 personal message (a ``str`` as its UTF-8 bytes).

        Raises:
            TotpRequired, TotpInvalid, TotpReplayed, TotpLocked: the gate.
        """
    def sign_typed_data(
        self,
        typed_data: JsonDocument,
        wallet: Optional[str] = None,
        index: Optional[int] = None,
        *,
        path: Optional[str] = None,
        code: Optional[str] = None,
        key_id: Optional[str] = None,
        key: Optional[str] = None,
    ) -> SignedMessage:
        """Signs EIP-712 typed data: the ``eth_signTypedData_v4`` object
        (``types``, ``primaryType``, ``domain``, ``message``), strictly.

        Raises:
            BadInput: malformed typed data (the message names the field).
            TotpRequired, TotpInvalid, TotpReplayed, TotpLocked: the gate.
        """
    def export_private_key(
        self,
        wallet: Optional[str] = None,
        index: Optional[int] = None,
        *,
        path: Optional[str] = None,
        code: Optional[str] = None,
    ) -> bytes:
        """A key's 32-byte private key: key material, through the gates
        (audited; an enrolled wallet needs a fresh code).

        Raises:
            TotpRequired, TotpInvalid, TotpReplayed, TotpLocked: the gate.
            Forbidden: the key would expose an enrolled wallet's node.
        """
    def export_keystore_v3(
        self,
        wallet: Optional[str] = None,
        index: Optional[int] = None,
        *,
        password: Secret,
        path: Optional[str] = None,
        code: Optional[str] = None,
        light_kdf: bool = False,
    ) -> dict:
        """A key as a Web3 Secret Storage v3 keystore (scrypt), which geth
        and eth-account's ``Account.decrypt`` open, through the gates.

        Args:
            password: the v3 file's password.
            light_kdf: scrypt n=4096, p=6 instead of n=2^18, p=1.

        Raises:
            TotpRequired, TotpInvalid, TotpReplayed, TotpLocked: the gate.
            Forbidden: the key would expose an enrolled wallet's node.
        """

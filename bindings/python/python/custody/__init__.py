"""custody: hold users' Ethereum keys behind a TOTP gate and an audit log.

The Python face of the custody Rust crates (the same operations as the C
ABI, through the same gates): open or create a keystore, derive addresses,
enrol a wallet for TOTP, sign transactions (types 0-4), EIP-191 messages
and EIP-712 typed data, and export a key only through the gate.

Every failure raises a subclass of :class:`custody.errors.CustodyError`
named after its stable kind (see :mod:`custody.errors`).
"""

from custody import errors
from custody._custody import (
    DerivedKey,
    Keystore,
    SignedMessage,
    SignedTransaction,
    TotpEnrolment,
    __version__,
    generate_mnemonic,
)
from custody.errors import *  # noqa: F401,F403  (the exception classes)
from custody.errors import __all__ as _error_names

__all__ = [
    "Keystore",
    "DerivedKey",
    "SignedTransaction",
    "SignedMessage",
    "TotpEnrolment",
    "generate_mnemonic",
    "errors",
    "__version__",
    *_error_names,
]

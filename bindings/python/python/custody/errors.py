"""The exceptions of custody: one class per stable error kind.

Every failure raises a subclass of :class:`CustodyError` named after its
kind, the same kebab-case kinds the ``custody`` CLI prints and the C ABI
returns (``custody_core::ErrorReport``): ``totp-required`` raises
:class:`TotpRequired`, ``bad-input`` raises :class:`BadInput`, and so on.
A kind this version does not name (a newer backend's) raises
:class:`CustodyError` itself, with ``.kind`` still set.

No message ever holds a secret (a passphrase, a code, key material).
"""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "CustodyError",
    "BadInput",
    "WrongPassphrase",
    "TotpRequired",
    "TotpInvalid",
    "TotpReplayed",
    "TotpLocked",
    "Forbidden",
    "PolicyDenied",
    "ApprovalsRequired",
    "VerdictInvalid",
    "AccessDenied",
    "AttestationInvalid",
    "NotFound",
    "AlreadyExists",
    "Unsupported",
    "Malformed",
    "DecryptionFailed",
    "DerivationFailed",
    "WrongKek",
    "Conflict",
    "InvalidSignature",
    "AuditChainBroken",
    "Rng",
    "Io",
    "KeyDisabled",
    "WrongKeyUsage",
    "Throttled",
    "Unavailable",
    "Internal",
]


class CustodyError(Exception):
    """Base class of every custody error.

    Attributes:
        kind: the stable kebab-case kind (``"totp-required"``, ...).
        message: a human sentence naming the offending argument.
        status: the CLI's exit code for the kind: 2 bad input, 3 an
            authentication failure (passphrase, TOTP, policy), 1 the rest.
    """

    #: The kind a subclass stands for (``""`` on the base class).
    KIND: str = ""

    kind: str
    message: str
    status: int

    def __init__(self, message: str, *, kind: Optional[str] = None, status: int = 1) -> None:
        super().__init__(message)
        self.kind = kind if kind is not None else self.KIND
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class BadInput(CustodyError, ValueError):
    """``bad-input``: a malformed argument (JSON, path, wallet name, type)."""

    KIND = "bad-input"


class WrongPassphrase(CustodyError):
    """``wrong-passphrase``: the keystore passphrase or a v3 password is wrong."""

    KIND = "wrong-passphrase"


class TotpRequired(CustodyError):
    """``totp-required``: the wallet is enrolled for TOTP and no code was given."""

    KIND = "totp-required"


class TotpInvalid(CustodyError):
    """``totp-invalid``: the code is wrong (counts towards the lockout)."""

    KIND = "totp-invalid"


class TotpReplayed(CustodyError):
    """``totp-replayed``: the code was already used (no lockout count)."""

    KIND = "totp-replayed"


class TotpLocked(CustodyError):
    """``totp-locked``: too many wrong codes; the wallet is locked for a while."""

    KIND = "totp-locked"


class Forbidden(CustodyError):
    """``forbidden``: never allowed on this key (e.g. exporting an ancestor of an enrolled wallet)."""

    KIND = "forbidden"


class PolicyDenied(CustodyError):
    """``policy-denied``: the wallet's policy denies the operation."""

    KIND = "policy-denied"


class ApprovalsRequired(CustodyError):
    """``approvals-required``: the policy needs approvals that were not given."""

    KIND = "approvals-required"


class VerdictInvalid(CustodyError):
    """``verdict-invalid``: the policy verdict does not cover this request."""

    KIND = "verdict-invalid"


class AccessDenied(CustodyError):
    """``access-denied``: a KMS or HSM refused the credentials."""

    KIND = "access-denied"


class AttestationInvalid(CustodyError):
    """``attestation-invalid``: an enclave attestation document failed a check."""

    KIND = "attestation-invalid"


class NotFound(CustodyError):
    """``not-found``: no keystore, key or enrolment there."""

    KIND = "not-found"


class AlreadyExists(CustodyError):
    """``already-exists``: a keystore or an enrolment is already there."""

    KIND = "already-exists"


class Unsupported(CustodyError):
    """``unsupported``: the backend or format cannot do this."""

    KIND = "unsupported"


class Malformed(CustodyError):
    """``malformed``: a record or file on disk is not well formed."""

    KIND = "malformed"


class DecryptionFailed(CustodyError):
    """``decryption-failed``: an envelope failed authentication (deliberately opaque)."""

    KIND = "decryption-failed"


class DerivationFailed(CustodyError):
    """``derivation-failed``: BIP32 hit an invalid child (probability below 2^-127)."""

    KIND = "derivation-failed"


class WrongKek(CustodyError):
    """``wrong-kek``: the keystore was opened with the wrong kind of key-encryption key."""

    KIND = "wrong-kek"


class Conflict(CustodyError):
    """``conflict``: changed concurrently (by another process); retry or reopen."""

    KIND = "conflict"


class InvalidSignature(CustodyError):
    """``invalid-signature``: a backend's signature does not verify for the pinned key."""

    KIND = "invalid-signature"


class AuditChainBroken(CustodyError):
    """``audit-chain-broken``: the audit log's hash chain is broken."""

    KIND = "audit-chain-broken"


class Rng(CustodyError):
    """``rng``: the operating system's random number generator failed."""

    KIND = "rng"


class Io(CustodyError):
    """``io``: a file-system error."""

    KIND = "io"


class KeyDisabled(CustodyError):
    """``key-disabled``: the KMS or HSM key is disabled."""

    KIND = "key-disabled"


class WrongKeyUsage(CustodyError):
    """``wrong-key-usage``: the KMS or HSM key is not for this use."""

    KIND = "wrong-key-usage"


class Throttled(CustodyError):
    """``throttled``: the KMS kept throttling after bounded retries."""

    KIND = "throttled"


class Unavailable(CustodyError):
    """``unavailable``: the backend's endpoint is unreachable or timed out."""

    KIND = "unavailable"


class Internal(CustodyError):
    """``internal``: a bug in custody (a panic caught at the boundary)."""

    KIND = "internal"


#: Every named kind, to its class.
KINDS: Dict[str, Type[CustodyError]] = {
    cls.KIND: cls
    for cls in (
        BadInput,
        WrongPassphrase,
        TotpRequired,
        TotpInvalid,
        TotpReplayed,
        TotpLocked,
        Forbidden,
        PolicyDenied,
        ApprovalsRequired,
        VerdictInvalid,
        AccessDenied,
        AttestationInvalid,
        NotFound,
        AlreadyExists,
        Unsupported,
        Malformed,
        DecryptionFailed,
        DerivationFailed,
        WrongKek,
        Conflict,
        InvalidSignature,
        AuditChainBroken,
        Rng,
        Io,
        KeyDisabled,
        WrongKeyUsage,
        Throttled,
        Unavailable,
        Internal,
    )
}


def _from_report(kind: str, message: str, status: int) -> CustodyError:
    """The exception for a report (called by the extension module)."""
    cls = KINDS.get(kind, CustodyError)
    return cls(message, kind=kind, status=status)

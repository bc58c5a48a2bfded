//! The crate's one error type.

/// Everything that can go wrong in this crate.
///
/// No variant carries secret material: share indices, counts and static
/// descriptions only. A sealed share that does not open is one opaque
/// variant ([`Error::SealOpenFailed`]), whatever the cause (another
/// enclave's key, a changed byte, another manifest), like age's
/// `DecryptionFailed`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Threshold and share count out of range (`1 <= M <= N <= 255`).
    #[error("invalid quorum parameters: {0}")]
    InvalidParameters(&'static str),
    /// The operating system's random number generator failed.
    #[error("the random number generator failed")]
    Rng,
    /// A share file, share set or sealed share is not in its format
    /// (`SPEC.md`): bad JSON, an unknown or repeated member, a wrong
    /// length, an unsupported version.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A public key (the quorum key or an enclave key) is not a valid
    /// P-256 point in the expected encoding.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(&'static str),
    /// The manifest (HPKE `info`) is longer than [`crate::MAX_MANIFEST_BYTES`].
    #[error("manifest longer than 512 bytes")]
    ManifestTooLong,
    /// A share does not match the commitment the share set publishes for
    /// its index: a wrong or tampered share.
    #[error("share {index} does not match its commitment")]
    ShareInvalid {
        /// The share's index (1..=N).
        index: u8,
    },
    /// A share's index is not one of the share set's (1..=N).
    #[error("share index {index} is not in the share set")]
    UnknownIndex {
        /// The index named by the share.
        index: u8,
    },
    /// A share belongs to another share set (its set id differs).
    #[error("share {index} belongs to another share set")]
    ForeignShare {
        /// The index named by the share.
        index: u8,
    },
    /// A share with this index was already accepted.
    #[error("share {index} was already accepted")]
    DuplicateShare {
        /// The repeated index.
        index: u8,
    },
    /// A sealed share did not open: sealed to another enclave key, under
    /// another manifest or share set, or altered. Opaque on purpose.
    #[error("sealed share {index} did not open")]
    SealOpenFailed {
        /// The index the sealed share's (unauthenticated) header names.
        index: u8,
    },
    /// Fewer shares than the threshold were accepted.
    #[error("quorum incomplete: {have} of {need} shares")]
    QuorumIncomplete {
        /// Shares accepted so far.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// The reconstructed secret's public key is not the share set's quorum
    /// public key. Nothing was yielded.
    #[error("the reconstructed key does not match the quorum public key")]
    QuorumKeyMismatch,
    /// The boot already yielded its quorum key; it accepts nothing more.
    #[error("the boot already finished")]
    BootFinished,
}

impl Error {
    /// A stable kebab-case name for this error's kind (a published
    /// contract: the `custody` CLI prints it, shared/CLI.md "Quorum boot").
    ///
    /// - `quorum-incomplete`: fewer shares than the threshold;
    /// - `share-invalid`: one share refused (another set's, an unknown
    ///   index, a repeat, a sealed share that does not open, a share that
    ///   does not match its commitment), the message naming its index;
    /// - `quorum-key-mismatch`: every share matched its commitment but the
    ///   rebuilt key is not the share set's (a share set not made by one
    ///   split);
    /// - `bad-input`: a file not in its format, a bad key or parameter;
    /// - `rng`, `conflict` (the boot already finished).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidParameters(_)
            | Self::Malformed(_)
            | Self::InvalidPublicKey(_)
            | Self::ManifestTooLong => "bad-input",
            Self::Rng => "rng",
            Self::ShareInvalid { .. }
            | Self::UnknownIndex { .. }
            | Self::ForeignShare { .. }
            | Self::DuplicateShare { .. }
            | Self::SealOpenFailed { .. } => "share-invalid",
            Self::QuorumIncomplete { .. } => "quorum-incomplete",
            Self::QuorumKeyMismatch => "quorum-key-mismatch",
            Self::BootFinished => "conflict",
        }
    }

    /// The index of the share this error is about, if it is about one.
    #[must_use]
    pub fn share_index(&self) -> Option<u8> {
        match self {
            Self::ShareInvalid { index }
            | Self::UnknownIndex { index }
            | Self::ForeignShare { index }
            | Self::DuplicateShare { index }
            | Self::SealOpenFailed { index } => Some(*index),
            _ => None,
        }
    }
}

impl From<Error> for custody_core::ErrorReport {
    /// The error's [kind](Error::kind) and `Display` (which names share
    /// indices and counts only, never share material).
    fn from(e: Error) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_are_the_published_ones() {
        let report = |e: Error| {
            let r = custody_core::ErrorReport::from(e);
            (r.kind(), r.status(), r.message().to_owned())
        };
        assert_eq!(
            report(Error::QuorumIncomplete { have: 1, need: 2 }),
            (
                "quorum-incomplete",
                1,
                "quorum incomplete: 1 of 2 shares".into()
            )
        );
        assert_eq!(
            report(Error::DuplicateShare { index: 3 }),
            ("share-invalid", 1, "share 3 was already accepted".into())
        );
        assert_eq!(report(Error::ForeignShare { index: 2 }).0, "share-invalid");
        assert_eq!(report(Error::Malformed("share file")).1, 2);
        assert_eq!(Error::SealOpenFailed { index: 7 }.share_index(), Some(7));
        assert_eq!(Error::QuorumKeyMismatch.share_index(), None);
    }
}

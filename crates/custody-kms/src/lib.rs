//! custody-kms: not yet built (see the open issues).

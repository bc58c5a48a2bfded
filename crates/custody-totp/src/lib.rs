//! custody-totp: not yet built (see the open issues).

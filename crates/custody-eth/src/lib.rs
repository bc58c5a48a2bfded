//! custody-eth: not yet built (see the open issues).

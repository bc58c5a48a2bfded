//! The `custody` binary (see shared/CLI.md); not yet built.

fn main() {}

//! Benchmarks of the custody SDK; see `signing.rs` and `report.sh`.

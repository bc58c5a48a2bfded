//! The quorum boot of a signing enclave, with the fake Nitro Security
//! Module: a 2-of-3 split, two holders who verify the enclave's attestation
//! and seal their shares to it, the boot, a user key wrapped under the
//! quorum KEK, a restart with two other holders, and a signature checked
//! by recovering its address. The story is `custody_examples::quorum_ceremony`.
//!
//! Run: `cargo run -p custody-examples --features quorum --example quorum_boot`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let outcome = custody_examples::quorum_ceremony::run(&mut std::io::stdout())?;
    if outcome.recovered != custody_examples::quorum_ceremony::ALICE {
        return Err(format!("recovered {}, not Alice", outcome.recovered).into());
    }
    println!("ok: the signature recovers to Alice's address");
    Ok(())
}

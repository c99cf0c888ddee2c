//! The vigil daemon.

fn main() -> anyhow::Result<()> {
    Ok(())
}

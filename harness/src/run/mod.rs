//! `faultline test` (in progress).
use crate::cli::TestArgs;
use crate::exit::Failure;
pub fn main(_args: TestArgs) -> Result<i32, Failure> {
    Err(Failure::Internal(anyhow::anyhow!("not yet")))
}

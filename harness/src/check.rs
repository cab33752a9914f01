//! `faultline check` (in progress).
use crate::cli::CheckArgs;
use crate::exit::Failure;
pub fn main(_args: CheckArgs) -> Result<i32, Failure> {
    Err(Failure::Internal(anyhow::anyhow!("not yet")))
}

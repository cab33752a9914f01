//! `faultline protocols` (in progress).
use crate::cli::ProtocolsArgs;
use crate::exit::Failure;
pub fn main(_args: ProtocolsArgs) -> Result<i32, Failure> {
    Err(Failure::Internal(anyhow::anyhow!("not yet")))
}

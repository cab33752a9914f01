//! Reports and suites (in progress).
use crate::cli::{ReportArgs, SuiteArgs};
use crate::exit::Failure;
pub fn suite_main(_args: SuiteArgs) -> Result<i32, Failure> {
    Err(Failure::Internal(anyhow::anyhow!("not yet")))
}
pub fn report_main(_args: ReportArgs) -> Result<i32, Failure> {
    Err(Failure::Internal(anyhow::anyhow!("not yet")))
}

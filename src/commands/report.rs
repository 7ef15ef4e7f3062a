use anyhow::Result;

use crate::cli::ReportArgs;

pub fn run(_args: ReportArgs) -> Result<u8> {
    Err(crate::error::refuse("`git orch report` is not available in this build yet"))
}

use anyhow::Result;

use crate::cli::ManArgs;

pub fn run(_args: ManArgs) -> Result<u8> {
    Err(crate::error::refuse("`git orch man` is not available in this build yet"))
}

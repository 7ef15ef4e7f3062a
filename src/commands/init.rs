use anyhow::Result;

use crate::cli::InitArgs;

pub fn run(_args: InitArgs) -> Result<u8> {
    Err(crate::error::refuse("`git orch init` is not available in this build yet"))
}

use anyhow::Result;

use crate::cli::ImportArgs;

pub fn run(_args: ImportArgs) -> Result<u8> {
    Err(crate::error::refuse("`git orch import` is not available in this build yet"))
}

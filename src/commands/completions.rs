use anyhow::Result;

use crate::cli::CompletionsArgs;

pub fn run(_args: CompletionsArgs) -> Result<u8> {
    Err(crate::error::refuse("`git orch completions` is not available in this build yet"))
}

use anyhow::Result;

use crate::cli::GraphArgs;

pub fn run(_args: GraphArgs) -> Result<u8> {
    Err(crate::error::refuse("`git orch graph` is not available in this build yet"))
}

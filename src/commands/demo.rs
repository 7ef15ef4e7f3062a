pub fn run(_args: crate::cli::DemoArgs) -> anyhow::Result<u8> {
    Ok(0)
}

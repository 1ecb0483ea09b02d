//! `trailvault-import`: the `trailvault import` command as a standalone program (same
//! arguments), for scripts and benchmarks that do not need the whole binary.

use clap::Parser;
use trailvault_import::{run_import, ImportArgs};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "trailvault-import",
    about = "Import AWS log files into a vault"
)]
struct Cli {
    #[command(flatten)]
    args: ImportArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = rt.block_on(run_import(cli.args))?;
    std::process::exit(code);
}

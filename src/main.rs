//! `splai`: the one binary of SPLAI — every service (`up`, `gateway`, `scheduler`, `executor`,
//! `operator`), the CLI client (`submit`, `job`, …), `replay`/`gen` and the benchmarks (`bench`).

mod bench;
mod cli;
mod client;
mod contract;
mod executor_cmd;
mod gateway_cmd;
mod metrics_server;
mod operator_cmd;
mod replay;
mod scheduler_cmd;
mod threads;
mod up;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(error) => {
            // Like anyhow's `{:#}`, but a cause that a library error already prints is not repeated.
            eprintln!("error: {}", splai_telemetry::chain(error.as_ref()));
            std::process::ExitCode::from(2)
        }
    }
}

//! `splai`: the one binary of SPLAI. Service commands arrive with their issues; today it has the
//! configuration and log-benchmark commands.

mod bench;
mod cli;
mod executor_cmd;
mod replay;
mod scheduler_cmd;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    trailkeeper::telemetry::init();
    trailkeeper::cli::run(trailkeeper::cli::Cli::parse()).await
}

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    trailkeeper::runtime::allocator::tune();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        trailkeeper::runtime::telemetry::init();
        trailkeeper::cli::run(trailkeeper::cli::Cli::parse()).await
    })
}

//! The `ktasks` binary: a thin shell over `ktasks::cli`. Exit codes: 0 success, 1 a failure
//! explained on stderr, 2 bad usage (clap's own usage errors also exit 2).

use std::process::ExitCode;

use clap::Parser;
use ktasks::cli::{Cli, Failure, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

//! The `ktasks` binary: a thin shell over `ktasks::cli`. Exit codes: 0 success, 1 a failure
//! explained on stderr, 2 bad usage (clap's own usage errors also exit 2).

use std::process::ExitCode;

use clap::Parser;
use ktasks::cli::{Cli, Failure, run};

/// GETs build their reply on a read thread and the async worker frees it, so with glibc every
/// allocation on a read thread takes malloc's slow path. mimalloc hands cross-thread frees back
/// to the owning thread's heap (docs/performance.md has the measurements).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Everything this process creates (the database, its -wal and -shm, backups) is readable by
    // its owner only: the database holds password hashes, sessions and every task.
    // SAFETY: umask(2) only sets this process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
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

//! `sio`: emit into a Socket.IO cluster and inspect it from a shell.
//!
//! Exit status: 0 success, 1 a broker or cluster failure (unreachable, timeout), 2 bad
//! usage or input. Errors are one line on stderr with their cause chain.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod doctor;
mod output;
mod stats;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::commands::run;

// glibc's allocator contends between the runtime's threads on `emit --stdin`; mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // SIO_LOG, else RUST_LOG, else errors only; colour codes only for a terminal
    socketio_emitter::init_logs(cli.log_format, &["SIO_LOG", "RUST_LOG"], "error");
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sio: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if f.code == 0 => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("sio: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

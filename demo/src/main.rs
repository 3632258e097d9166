//! sio-node: not built yet.
#[allow(clippy::print_stderr)]
fn main() -> std::process::ExitCode {
    eprintln!("sio-node: the demo server is not implemented yet");
    std::process::ExitCode::from(2)
}

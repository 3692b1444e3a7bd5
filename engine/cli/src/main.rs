//! The `cairn` binary: wires the process's stdio and environment into [`cairn::run`].

use std::io::IsTerminal;

fn main() {
    let vars = std::env::vars().collect();
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let mut io = cairn::Io {
        out: &mut out,
        err: &mut err,
        vars,
        color,
    };
    let code = cairn::run(std::env::args_os(), &mut io);
    std::process::exit(code);
}

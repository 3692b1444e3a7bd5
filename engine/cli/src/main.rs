//! The `cairn` binary: wires the process's stdio and environment into [`cairn::run`].

use std::io::IsTerminal;

fn main() {
    let vars = std::env::vars().collect();
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let terminal = stdout.is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let mut input = stdin.lock();
    let mut io = cairn::Io {
        out: &mut out,
        err: &mut err,
        vars,
        color,
        terminal,
        input: if interactive { Some(&mut input) } else { None },
        cwd: std::env::current_dir().unwrap_or_default(),
    };
    let code = cairn::run(std::env::args_os(), &mut io);
    std::process::exit(code);
}

//! `strictctl`: see strictctl/src/lib.rs; one file per subcommand in `cli/`.

fn main() {
    // A reader that stops early (`strictctl interfaces | head`) ends the output quietly, as for any Unix
    // tool, instead of a panic on the broken pipe. Rust ignores SIGPIPE by default.
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    std::process::exit(strictctl::cli::main());
}

//! `strictctl`: see strictctl/src/lib.rs; one file per subcommand in `cli/`.

fn main() {
    std::process::exit(strictctl::cli::main());
}

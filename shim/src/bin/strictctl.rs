//! `strictctl`: the strict shim's operator tool.

fn main() {
    std::process::exit(strict_shim::strictctl::main());
}

//! `strictctl audit`: the audit trail reported, with the kernel's seccomp denials of narrowed
//! containers and the `snap connect` commands to run.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::Args;

use super::common::{Format, EXIT_RUNS};
use super::error::Error;
use crate::audit::report;
use crate::setup::{load_catalog, load_config};

#[derive(Args)]
pub struct AuditArgs {
    /// The audit trail (default: the configuration's `audit.path`). Rotated files are read too.
    file: Option<PathBuf>,
    /// Only decisions of the last DURATION (`1h`, `30m`, `2days`).
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The kernel's seccomp log: `auto` (dmesg, else the journal), `none`, `dmesg`, `journal`, or a file
    /// (dmesg output, `journalctl` output or auditd's audit.log).
    #[arg(long, value_name = "SOURCE", default_value = "auto")]
    seccomp_log: String,
    /// The strict configuration file (for the default trail and profiles).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Vendor profiles to use instead of the embedded ones.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
}

/// Why the kernel's log was not read; the report notes it and goes on without.
#[derive(Debug, thiserror::Error)]
pub enum SeccompLogError {
    #[error("{program}: {source}")]
    CannotRun {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} {}: {stderr}", .args.join(" "))]
    Failed {
        program: &'static str,
        args: &'static [&'static str],
        stderr: String,
    },
    /// `auto`: neither dmesg nor the journal.
    #[error("not read ({dmesg}; {journal})")]
    NotRead {
        dmesg: Box<SeccompLogError>,
        journal: Box<SeccompLogError>,
    },
    #[error("{file}: {source}")]
    File {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

pub fn run(args: AuditArgs) -> Result<i32, Error> {
    let since = match &args.since {
        Some(text) => {
            let duration = humantime::parse_duration(text).map_err(|source| Error::Since {
                text: text.clone(),
                source,
            })?;
            Some(SystemTime::now() - duration)
        }
        None => None,
    };
    let (config, _) = load_config(args.config.as_deref())?;
    let catalog = load_catalog(&config, args.profiles.as_deref())?;
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| config.audit.path.clone());
    let (records, unreadable) =
        report::read_records(&file, since).map_err(|source| Error::Read {
            path: file.clone(),
            source,
        })?;
    let mut built = report::build(&records, unreadable, &catalog);
    match seccomp_log_lines(&args.seccomp_log) {
        Ok(Some(lines)) => {
            report::add_seccomp(&mut built, lines.into_iter(), since, &records, &catalog)
        }
        Ok(None) => {}
        Err(note) => built.seccomp_log_note = Some(note.to_string()),
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&built)?),
        Format::Text => print!("{}", report::render_text(&built)),
    }
    Ok(EXIT_RUNS)
}

/// The lines `program args` prints.
fn run_program(
    program: &'static str,
    args: &'static [&'static str],
) -> Result<Vec<String>, SeccompLogError> {
    let output = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| SeccompLogError::CannotRun { program, source })?;
    if !output.status.success() {
        return Err(SeccompLogError::Failed {
            program,
            args,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The kernel log's lines from `source`; Ok(None) for `none`; Err when it cannot be read.
fn seccomp_log_lines(source: &str) -> Result<Option<Vec<String>>, SeccompLogError> {
    let dmesg = || run_program("dmesg", &[]);
    let journal = || {
        run_program(
            "journalctl",
            &[
                "--no-pager",
                "-o",
                "short",
                "-b",
                "_TRANSPORT=kernel",
                "_TRANSPORT=audit",
            ],
        )
    };
    match source {
        "none" => Ok(None),
        "dmesg" => dmesg().map(Some),
        "journal" => journal().map(Some),
        "auto" => match dmesg() {
            Ok(lines) => Ok(Some(lines)),
            Err(first) => journal()
                .map(Some)
                .map_err(|second| SeccompLogError::NotRead {
                    dmesg: Box::new(first),
                    journal: Box::new(second),
                }),
        },
        file => std::fs::read_to_string(file)
            .map(|text| Some(text.lines().map(str::to_string).collect()))
            .map_err(|source| SeccompLogError::File {
                file: file.to_string(),
                source,
            }),
    }
}

//! `strictctl status`: the running containers the gate admitted on this node whose admission no longer
//! holds under the connections now, with what each holds that is no longer granted.
//!
//! Exit status: 0 none, 1 some (or some could not be judged), 2 an error.

use std::path::PathBuf;

use clap::Args;
use strict_policy::OnRevoke;

use super::common::{EXIT_REFUSED, EXIT_RUNS};
use super::error::Error;
use crate::drift::node::RealNode;
use crate::drift::reconcile::reconcile;
use crate::drift::{survey, Held, Judge, Survey};
use crate::setup::load_config;

#[derive(Args)]
pub struct StatusArgs {
    /// The strict configuration file: its `[node] containerd_states` say where to look, and it judges the
    /// containers whose admission names no configuration file (default: /etc/containerd/strict.toml when
    /// it exists).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// containerd state directories to look in instead of the configuration's.
    #[arg(long = "containerd-state", value_name = "DIR")]
    states: Vec<PathBuf>,
    /// Also list the containers whose admission still holds.
    #[arg(long)]
    all: bool,
    /// Judge as if this plug (its name in the snap) were disconnected already: for a snap's
    /// `disconnect-plug-<plug>` hook, which runs before snapd disconnects it.
    #[arg(long, value_name = "PLUG")]
    disconnecting: Vec<String>,
}

#[derive(Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    status: StatusArgs,
    /// What to do instead of each configuration's `on_revoke`.
    #[arg(long, value_enum, value_name = "ACTION")]
    on_revoke: Option<OnRevokeArg>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OnRevokeArg {
    Report,
    Narrow,
    Stop,
}

impl From<OnRevokeArg> for OnRevoke {
    fn from(arg: OnRevokeArg) -> OnRevoke {
        match arg {
            OnRevokeArg::Report => OnRevoke::Report,
            OnRevokeArg::Narrow => OnRevoke::Narrow,
            OnRevokeArg::Stop => OnRevoke::Stop,
        }
    }
}

fn look(args: &StatusArgs) -> Result<(Survey, Judge), Error> {
    let (config, _) = load_config(args.config.as_deref())?;
    let states = if args.states.is_empty() {
        config.node.containerd_states.clone()
    } else {
        args.states.clone()
    };
    let mut judge = Judge::new(config).disconnecting(args.disconnecting.clone());
    let survey = survey(&states, &mut judge, &RealNode);
    Ok((survey, judge))
}

fn name(held: &Held) -> String {
    let identity = crate::audit::record::Identity::of_spec(&held.admission.spec);
    let pod = identity
        .pod
        .map(|pod| format!(" pod {}/{}", pod.namespace, pod.name))
        .unwrap_or_default();
    let container = identity
        .container_name
        .map(|name| format!(" container {name}"))
        .unwrap_or_default();
    format!(
        "{}/{}{pod}{container} ({}, pid {}, admitted {} in {} mode)",
        held.admission.namespace,
        held.admission.id,
        held.state.status,
        held.state.pid,
        held.admission.admitted_at,
        held.admission.mode
    )
}

fn print_held(held: &Held) {
    println!("{}", name(held));
    match &held.now {
        Err(error) => println!("  cannot be judged now: {error}"),
        Ok(judged) => {
            if !judged.revoked_plugs.is_empty() {
                println!(
                    "  admitted with, no longer connected: {}",
                    judged.revoked_plugs.join(", ")
                );
            }
            for violation in &judged.verdict.violations {
                println!("  no longer granted: {}", violation.sentence());
            }
            for narrowing in &judged.verdict.narrowed {
                println!(
                    "  would now be narrowed: {} {}: {} -> {}",
                    narrowing.rule, narrowing.field, narrowing.from, narrowing.to
                );
            }
            if !held.drifted() {
                println!("  holds: nothing the connections no longer grant");
            }
        }
    }
    for revoked in &held.admission.revoked {
        println!("  revoked by reconcile: {revoked}");
    }
}

fn print_unreadable(survey: &Survey) {
    for problem in &survey.unreadable {
        eprintln!("strictctl: {problem}");
    }
}

pub fn status(args: StatusArgs) -> Result<i32, Error> {
    let (survey, _) = look(&args)?;
    print_unreadable(&survey);
    let drifted = survey.held.iter().filter(|h| h.drifted()).count();
    for held in &survey.held {
        if args.all || held.drifted() {
            print_held(held);
        }
    }
    println!(
        "{} running container(s) admitted by strict; {drifted} hold(s) what the connections no longer grant",
        survey.held.len()
    );
    Ok(if drifted > 0 || !survey.unreadable.is_empty() {
        EXIT_REFUSED
    } else {
        EXIT_RUNS
    })
}

pub fn reconcile_all(args: ReconcileArgs) -> Result<i32, Error> {
    let (survey, mut judge) = look(&args.status)?;
    print_unreadable(&survey);
    let choice = args.on_revoke.map(OnRevoke::from);
    // Exit 1 only when an action failed or a container could not be judged; an unreadable record is
    // listed (stderr) but does not fail a disconnect hook over a container it cannot act on anyway.
    let mut failed = false;
    let mut acted = 0;
    for held in survey.held.iter().filter(|h| h.drifted()) {
        print_held(held);
        let done = reconcile(held, choice, &mut judge, &RealNode);
        println!("  {}: {}", done.action.as_str(), done.detail);
        failed |= done.action == crate::drift::reconcile::Action::Failed;
        acted += 1;
    }
    println!("{acted} container(s) reconciled");
    Ok(if failed { EXIT_REFUSED } else { EXIT_RUNS })
}

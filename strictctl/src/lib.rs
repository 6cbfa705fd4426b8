//! `strictctl`: the operator's CLI for the strict runtime, and `strictctl gate`, the process that decides
//! for the shim. Everything that holds or reads policy lives here: the gate (`gate/`), loading the
//! configuration, profiles and connections (`setup.rs`, `sources/`), the audit trail (`audit/`), the
//! running containers' drift from the connections (`drift/`) and the node installer (`install/`). The
//! long-running shim links none of it.

pub mod audit;
pub mod cli;
pub mod drift;
pub mod gate;
pub mod install;
pub mod setup;
pub mod sources;

//! kiln: a local, hypervisor-first VM image builder that reads Packer templates.
//!
//! The data flow (see ../shared/DESIGN.md): a template is loaded with source
//! spans, variables are resolved, every section is decoded into typed
//! configuration (all errors collected), and builds are planned and run.

pub mod artifact;
pub mod bootcmd;
pub mod builder;
pub mod check;
pub mod checkpoint;
pub mod cli;
pub mod cloud;
pub mod communicator;
pub mod config;
pub mod digest;
pub mod error_chain;
pub mod hcl;
pub mod host;
pub mod http;
pub mod hypervisor;
pub mod iso;
pub mod media;
pub mod postprocess;
pub mod provision;
pub mod run;
pub mod template;
pub mod ui;
pub mod vm;

/// The version kiln reports, and the Packer version it answers
/// `{{packer_version}}` and `min_packer_version` with.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit kiln was built from (12 hex digits), or "unknown"
/// outside a git checkout (see build.rs).
pub const GIT_COMMIT: &str = env!("KILN_GIT_COMMIT");

/// The Packer release whose template behaviour kiln follows.
pub const PACKER_COMPAT_VERSION: &str = "1.6.6";

//! The command line as clap reads it; the one source of truth for --help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Build VM images from Packer templates, locally",
    long_about = "kiln builds virtual machine images from Packer JSON templates: it fetches and verifies the \
installer ISO, boots it in QEMU or VirtualBox, types the boot command, serves answer files, provisions over SSH \
and writes the artifacts.\n\nPacker's single-dash flags work too: kiln build -var-file=vars.json -only=qemu t.json",
    after_help = "Exit status: 0 on success, 1 on any error."
)]
pub struct Cli {
    #[command(flatten)]
    pub ui: UiArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct UiArgs {
    /// Print Packer's machine-readable lines (timestamp,target,type,data) on stdout.
    #[arg(long, global = true)]
    pub machine_readable: bool,
    /// Prefix every line with the time.
    #[arg(long, global = true)]
    pub timestamp_ui: bool,
    /// Colour output (-color=false turns it off).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub color: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the builds of a template.
    Build(BuildArgs),
    /// Check a template and its variables without running anything.
    Validate(ValidateArgs),
    /// Show a template's variables, builders, provisioners and post-processors.
    Inspect(InspectArgs),
    /// Print the template with deprecated keys rewritten to their modern form.
    Fix(FixArgs),
    /// Format HCL2 files (*.pkr.hcl, *.pkrvars.hcl) as packer fmt does.
    /// Exit status 3 under -check when a file is not formatted.
    Fmt(FmtArgs),
    /// Write an equivalent HCL2 template (TEMPLATE.pkr.hcl) for a JSON one.
    #[command(name = "hcl2_upgrade")]
    Hcl2Upgrade(Hcl2UpgradeArgs),
    /// Check an HCL2 template's required plugins (kiln's are built in:
    /// nothing is downloaded).
    Init(InitArgs),
    /// Manage the ISO cache (location: KILN_CACHE_DIR, else PACKER_CACHE_DIR,
    /// else ./iso-cache if it exists, else ~/.cache/kiln).
    #[command(subcommand)]
    Cache(CacheArgs),
    /// Print kiln's version.
    Version,
}

#[derive(Debug, Args, Clone, Default)]
pub struct VariableArgs {
    /// Set a variable: -var 'name=value' (repeatable; later ones win).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a JSON file (repeatable; later files win, -var wins over files).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Make every Packer-compatibility warning an error (also KILN_STRICT=1);
    /// the README lists them.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SelectionArgs {
    /// Run only these builds (comma-separated names, `*` wildcards).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub only: Vec<String>,
    /// Run every build except these (comma-separated names, `*` wildcards).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub except: Vec<String>,
}

/// `-on-error` takes the runner's own policy type; only the spelling and
/// the help of each value live here.
pub use crate::run::runner::OnError;

impl ValueEnum for OnError {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Self::Cleanup,
            Self::Abort,
            Self::Ask,
            Self::RunCleanupProvisioner,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            Self::Cleanup => {
                PossibleValue::new("cleanup").help("Kill the VM and remove what the build created")
            }
            Self::Abort => {
                PossibleValue::new("abort").help("Kill the VM but keep everything for inspection")
            }
            Self::Ask => PossibleValue::new("ask").help("Ask what to do (on a terminal)"),
            Self::RunCleanupProvisioner => PossibleValue::new("run-cleanup-provisioner")
                .help("Run the template's error-cleanup-provisioner, then clean up"),
        })
    }
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub variables: VariableArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Replace existing output directories and artifacts.
    #[arg(long)]
    pub force: bool,
    /// What to do when a build fails.
    #[arg(long, value_enum, default_value_t = OnError::Cleanup)]
    pub on_error: OnError,
    /// How many builds run at once (0 = all).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub parallel_builds: usize,
    /// Pause before each step.
    #[arg(long)]
    pub debug: bool,
    /// Never open a network connection: ISOs must already be in the cache.
    #[arg(long)]
    pub offline: bool,
    /// Install again even when an install checkpoint matches (and replace it).
    #[arg(long)]
    pub force_install: bool,
    /// The template (Packer JSON).
    pub template: PathBuf,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub variables: VariableArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Only check the JSON syntax and the template's structure.
    #[arg(long)]
    pub syntax_only: bool,
    /// HCL2: run the data sources' programs while validating (Packer's flag).
    #[arg(long)]
    pub evaluate_datasources: bool,
    /// HCL2: no warning for values set in var files for undeclared variables.
    #[arg(long)]
    pub no_warn_undeclared_var: bool,
    pub template: PathBuf,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Values to show for the variables (Packer 1.7+'s inspect takes them).
    #[command(flatten)]
    pub variables: VariableArgs,
    pub template: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// An HCL2 template: a .pkr.hcl file or a directory.
    pub template: PathBuf,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Only check: list the files that are not formatted, write nothing,
    /// exit 3 if there are any.
    #[arg(long)]
    pub check: bool,
    /// Print a unified diff of each change.
    #[arg(long)]
    pub diff: bool,
    /// Also format the files in subdirectories.
    #[arg(long)]
    pub recursive: bool,
    /// -write=false: list (and diff) the changes without writing them.
    #[arg(long, num_args = 0..=1, default_value = "true", default_missing_value = "true", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub write: bool,
    /// Files or directories; `-` formats stdin to stdout.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Hcl2UpgradeArgs {
    /// Where to write the HCL2 template (default: TEMPLATE.pkr.hcl).
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<PathBuf>,
    /// Add comments explaining the generated blocks.
    #[arg(long)]
    pub with_annotations: bool,
    /// The JSON template.
    pub template: PathBuf,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    pub template: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CacheArgs {
    #[command(flatten)]
    Store(super::cache::CacheCommand),
    /// Fetch and verify every ISO a template needs (warms a CI or offline cache).
    Fetch(FetchArgs),
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub variables: VariableArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Never open a network connection (check that everything is cached).
    #[arg(long)]
    pub offline: bool,
    pub template: PathBuf,
}

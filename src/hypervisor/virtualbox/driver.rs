//! Finding and running `VBoxManage`, and reading what it prints.
//!
//! [`VBoxManage`] is the thin trait the builder's steps use (so they can be
//! tested with a fake); only [`VBoxManage::run`] must be implemented, the
//! queries are parsed on top of it. [`VBoxManageCli`] is the real program.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use super::command::{VBOXMANAGE, VBoxCommand};
use crate::host::program::run_captured;

/// Environment variables naming VirtualBox's install directory, checked in
/// this order before PATH (the VirtualBox installer sets them on Windows;
/// Packer reads them there, kiln everywhere, as an explicit choice wins).
pub const INSTALL_PATH_VARS: [&str; 2] = ["VBOX_INSTALL_PATH", "VBOX_MSI_INSTALL_PATH"];

/// What VBoxManage prints on stderr when a VM name is unknown.
const UNKNOWN_VM_MARKER: &str = "Could not find a registered machine";

#[derive(Debug, thiserror::Error)]
pub enum VBoxError {
    #[error(
        "VBoxManage was not found (looked in {searched}); kiln drives VirtualBox through its \
         VBoxManage command, so install VirtualBox (https://www.virtualbox.org/wiki/Downloads, \
         or your distribution's `virtualbox` package) and put VBoxManage on PATH, or set \
         VBOX_INSTALL_PATH to the directory that holds it"
    )]
    NotInstalled { searched: String },
    #[error("could not run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("VirtualBox has no VM named {name:?}: {stderr}")]
    UnknownVm { name: String, stderr: String },
    #[error(
        "VirtualBox is installed but not set up: `VBoxManage --version` says {output:?}; \
         load its kernel module (vboxdrv), for example by reinstalling VirtualBox or running \
         `/sbin/vboxconfig`"
    )]
    NotSetUp { output: String },
    #[error("could not understand the output of `{command}`: {output:?}")]
    BadOutput { command: String, output: String },
}

impl VBoxError {
    /// The stderr VBoxManage printed, when it ran and failed.
    pub fn stderr(&self) -> Option<&str> {
        match self {
            Self::Failed { stderr, .. } | Self::UnknownVm { stderr, .. } => Some(stderr),
            _ => None,
        }
    }

    /// Turns "no such machine" failures into [`VBoxError::UnknownVm`].
    fn about_vm(self, name: &str) -> Self {
        match self {
            Self::Failed { stderr, .. } if stderr.contains(UNKNOWN_VM_MARKER) => Self::UnknownVm {
                name: name.to_owned(),
                stderr,
            },
            other => other,
        }
    }
}

/// `VBoxManage --version`: `7.0.20r163906`, or `6.1.38_Ubuntur153438`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VBoxVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// The SVN revision after `r`, when printed.
    pub revision: Option<u32>,
    /// The line as printed.
    pub raw: String,
}

impl VBoxVersion {
    /// `MAJOR.MINOR.PATCH`, what Packer calls the version (`{{ .Version }}`
    /// in `guest_additions_url`, the `.vbox_version` file).
    pub fn number(&self) -> String {
        format!("{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl std::fmt::Display for VBoxVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Parses `--version` output. Warnings (a missing kernel module, say) may
/// come first, so the last line that starts with a version is used.
pub fn parse_version(output: &str) -> Option<VBoxVersion> {
    output.lines().rev().find_map(|line| {
        let line = line.trim();
        let digits_end = line
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(line.len());
        let mut parts = line[..digits_end].split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        let revision = line[digits_end..]
            .rfind('r')
            .and_then(|i| line[digits_end + i + 1..].parse().ok());
        Some(VBoxVersion {
            major,
            minor,
            patch,
            revision,
            raw: line.to_owned(),
        })
    })
}

/// A VM's power state (`VMState=` in `showvminfo --machinereadable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmState {
    PowerOff,
    Running,
    Paused,
    Starting,
    Stopping,
    Saved,
    Aborted,
    /// Any other state, as printed (`saving`, `restoring`, `gurumeditation`, …).
    Other(String),
}

impl VmState {
    pub fn parse(s: &str) -> Self {
        match s {
            "poweroff" => Self::PowerOff,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "starting" => Self::Starting,
            "stopping" => Self::Stopping,
            "saved" => Self::Saved,
            "aborted" => Self::Aborted,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the VM still holds its session, as Packer's `IsRunning`
    /// counts it: a stopping or paused VM must still be powered off.
    pub fn is_running(&self) -> bool {
        matches!(
            self,
            Self::Running | Self::Paused | Self::Starting | Self::Stopping
        )
    }
}

/// One line of `VBoxManage list vms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmEntry {
    pub name: String,
    pub uuid: String,
}

/// Parses `list vms`: `"name" {uuid}` per line (a name may hold quotes,
/// so the uuid is taken from the end).
pub fn parse_list_vms(output: &str) -> Vec<VmEntry> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let (quoted, uuid) = line.rsplit_once(' ')?;
            let uuid = uuid.strip_prefix('{')?.strip_suffix('}')?;
            let name = quoted.strip_prefix('"')?.strip_suffix('"')?;
            Some(VmEntry {
                name: name.to_owned(),
                uuid: uuid.to_owned(),
            })
        })
        .collect()
}

/// Parses `showvminfo --machinereadable`: `key="value"` or `key=value`
/// lines, keys themselves quoted when they hold spaces
/// (`"IDE Controller-0-0"="/x.vdi"`), `\"` and `\\` escaped in values.
/// Lines that are not `key=value` (continuations of a multi-line
/// description) are skipped.
pub fn parse_machinereadable(output: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in output.lines() {
        let line = line.trim_end_matches('\r');
        let (key, rest) = if let Some(quoted) = line.strip_prefix('"') {
            let Some((key, rest)) = split_quoted(quoted) else {
                continue;
            };
            let Some(rest) = rest.strip_prefix('=') else {
                continue;
            };
            (key, rest)
        } else {
            let Some((key, rest)) = line.split_once('=') else {
                continue;
            };
            (key.to_owned(), rest)
        };
        let value = match rest.strip_prefix('"') {
            Some(quoted) => match split_quoted(quoted) {
                Some((value, _)) => value,
                None => continue,
            },
            None => rest.to_owned(),
        };
        map.insert(key, value);
    }
    map
}

/// Reads up to the closing quote of `s` (after an opening one), unescaping;
/// returns the text and what follows the quote.
fn split_quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// The VBoxManage operations a build needs. Implement [`VBoxManage::run`];
/// the queries are built on it.
pub trait VBoxManage: Send + Sync {
    /// Runs `VBoxManage ARGS…`, returning stdout; a failure carries stderr.
    fn run(&self, args: &[OsString]) -> Result<String, VBoxError>;

    /// Runs one built command.
    fn run_command(&self, command: &VBoxCommand) -> Result<String, VBoxError> {
        self.run(command.args())
    }

    /// The version; like Packer, an error when VBoxManage warns that the
    /// vboxdrv kernel module is missing, since no VM would start.
    fn version(&self) -> Result<VBoxVersion, VBoxError> {
        let out = self.run(&["--version".into()])?;
        if out.contains("vboxdrv") {
            return Err(VBoxError::NotSetUp {
                output: out.trim().to_owned(),
            });
        }
        parse_version(&out).ok_or(VBoxError::BadOutput {
            command: "VBoxManage --version".into(),
            output: out,
        })
    }

    /// `showvminfo NAME --machinereadable`, as a map.
    fn showvminfo_machinereadable(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, VBoxError> {
        let out = self
            .run(&["showvminfo".into(), name.into(), "--machinereadable".into()])
            .map_err(|e| e.about_vm(name))?;
        Ok(parse_machinereadable(&out))
    }

    fn vm_state(&self, name: &str) -> Result<VmState, VBoxError> {
        let info = self.showvminfo_machinereadable(name)?;
        info.get("VMState")
            .map(|s| VmState::parse(s))
            .ok_or_else(|| VBoxError::BadOutput {
                command: format!("VBoxManage showvminfo {name} --machinereadable"),
                output: "no VMState line".into(),
            })
    }

    fn list_vms(&self) -> Result<Vec<VmEntry>, VBoxError> {
        Ok(parse_list_vms(&self.run(&["list".into(), "vms".into()])?))
    }

    /// The guest additions ISO that came with this VirtualBox (`Default
    /// Guest Additions ISO` in `list systemproperties`), when it has one.
    fn default_guest_additions_iso(&self) -> Result<Option<PathBuf>, VBoxError> {
        let out = self.run(&["list".into(), "systemproperties".into()])?;
        Ok(parse_default_guest_additions_iso(&out))
    }
}

/// `Default Guest Additions ISO:     /usr/lib/virtualbox/additions/VBoxGuestAdditions.iso`
/// in `list systemproperties`; an empty value means none is installed.
pub fn parse_default_guest_additions_iso(output: &str) -> Option<PathBuf> {
    output.lines().find_map(|line| {
        let value = line
            .trim_end_matches('\r')
            .strip_prefix("Default Guest Additions ISO:")?;
        let value = value.trim();
        (!value.is_empty()).then(|| PathBuf::from(value))
    })
}

/// The real `VBoxManage`.
#[derive(Debug, Clone)]
pub struct VBoxManageCli {
    program: PathBuf,
}

impl VBoxManageCli {
    /// Uses this program.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
        }
    }

    /// Finds VBoxManage from the process's environment.
    pub fn locate() -> Result<Self, VBoxError> {
        Self::locate_with(&|key| std::env::var_os(key))
    }

    /// Finds VBoxManage in the directories of [`INSTALL_PATH_VARS`], then on
    /// `PATH`, reading variables through `env` (so tests need not change
    /// the process's environment).
    pub fn locate_with(env: &dyn Fn(&str) -> Option<OsString>) -> Result<Self, VBoxError> {
        let mut searched = Vec::new();
        for var in INSTALL_PATH_VARS.into_iter().chain(["PATH"]) {
            let Some(dirs) = env(var).filter(|v| !v.is_empty()) else {
                continue;
            };
            searched.push(format!("${var}"));
            for dir in std::env::split_paths(&dirs) {
                if let Some(found) = program_in(&dir) {
                    return Ok(Self::new(found));
                }
            }
        }
        let searched = if searched.is_empty() {
            "nowhere: neither PATH nor VBOX_INSTALL_PATH is set".into()
        } else {
            searched.join(", ")
        };
        Err(VBoxError::NotInstalled { searched })
    }

    pub fn program(&self) -> &Path {
        &self.program
    }
}

fn program_in(dir: &Path) -> Option<PathBuf> {
    let names: &[&str] = if cfg!(windows) {
        &["VBoxManage.exe"]
    } else {
        &[VBOXMANAGE]
    };
    names.iter().map(|n| dir.join(n)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

impl VBoxManage for VBoxManageCli {
    fn run(&self, args: &[OsString]) -> Result<String, VBoxError> {
        let out = run_captured(self.program.as_os_str(), args).map_err(|e| VBoxError::Spawn {
            command: e.command,
            source: e.source,
        })?;
        // Like Packer: some failures exit 0 but say so on stderr.
        if !out.status.success() || reports_error(&out.stderr) {
            return Err(VBoxError::Failed {
                command: out.command,
                status: out.status,
                stderr: out.stderr,
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `VBoxManage: error:` (or `VBoxManage.exe: error:`) anywhere in stderr.
fn reports_error(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        l.strip_prefix(VBOXMANAGE)
            .map(|rest| rest.trim_start_matches(".exe"))
            .is_some_and(|rest| rest.starts_with(": error:"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_printed() {
        let v = parse_version("7.0.20r163906\n").expect("parses");
        assert_eq!(
            (v.major, v.minor, v.patch, v.revision),
            (7, 0, 20, Some(163906))
        );
        assert_eq!(v.number(), "7.0.20");
        let v =
            parse_version("WARNING: running as root is not recommended.\n6.1.38_Ubuntur153438\n")
                .expect("parses");
        assert_eq!((v.number(), v.revision), ("6.1.38".into(), Some(153438)));
        assert_eq!(parse_version("7.1.4\n").expect("parses").revision, None);
        assert!(parse_version("no version here").is_none());
    }

    #[test]
    fn default_guest_additions_iso_from_systemproperties() {
        let out = "API version:                     7_0\r\n\
                   Default machine folder:          /root/VirtualBox VMs\r\n\
                   Default Guest Additions ISO:     /usr/lib/virtualbox/additions/VBoxGuestAdditions.iso\r\n\
                   Default frontend:                \r\n";
        assert_eq!(
            parse_default_guest_additions_iso(out),
            Some(PathBuf::from(
                "/usr/lib/virtualbox/additions/VBoxGuestAdditions.iso"
            ))
        );
        assert_eq!(
            parse_default_guest_additions_iso("Default Guest Additions ISO:     \n"),
            None
        );
        assert_eq!(
            parse_default_guest_additions_iso("API version: 7_0\n"),
            None
        );
    }

    /// A VBoxManage that prints `stdout` whatever it is asked.
    struct Canned(&'static str);

    impl VBoxManage for Canned {
        fn run(&self, _: &[OsString]) -> Result<String, VBoxError> {
            Ok(self.0.to_owned())
        }
    }

    #[test]
    fn missing_kernel_module_is_an_error() {
        let warned = Canned(
            "WARNING: The vboxdrv kernel module is not loaded. Either there is no module\n\
             available for the current kernel or it failed to load.\n7.0.20r163906\n",
        );
        let err = warned.version().expect_err("not set up");
        assert!(matches!(err, VBoxError::NotSetUp { .. }), "{err:?}");
        assert!(err.to_string().contains("vboxconfig"), "{err}");
        assert_eq!(
            Canned("7.0.20r163906\n").version().expect("ok").number(),
            "7.0.20"
        );
    }

    #[test]
    fn state_from_showvminfo() {
        let vm = Canned("name=\"x\"\nVMState=\"paused\"\n");
        assert_eq!(vm.vm_state("x").expect("state"), VmState::Paused);
        let err = Canned("name=\"x\"\n").vm_state("x").expect_err("no state");
        assert!(matches!(err, VBoxError::BadOutput { .. }), "{err:?}");
    }

    #[test]
    fn machinereadable_lines() {
        let out = r#"name="packer \"q\" vm"
memory=512
VMState="running"
"IDE Controller-0-0"="/tmp/My VMs/disk.vdi"
"IDE Controller-ImageUUID-0-0"="0b2c"
Forwarding(0)="packercomm,tcp,127.0.0.1,2222,,22"
description="two
lines"
"#;
        let m = parse_machinereadable(out);
        assert_eq!(m["name"], r#"packer "q" vm"#);
        assert_eq!(m["memory"], "512");
        assert_eq!(m["VMState"], "running");
        assert_eq!(m["IDE Controller-0-0"], "/tmp/My VMs/disk.vdi");
        assert_eq!(m["Forwarding(0)"], "packercomm,tcp,127.0.0.1,2222,,22");
        assert!(!m.contains_key("description"));
    }

    #[test]
    fn list_vms_lines() {
        let vms = parse_list_vms("\"a b\" {1234-5678}\n\"c\" {9}\n<inaccessible> {0}\n");
        assert_eq!(
            vms,
            vec![
                VmEntry {
                    name: "a b".into(),
                    uuid: "1234-5678".into()
                },
                VmEntry {
                    name: "c".into(),
                    uuid: "9".into()
                },
            ]
        );
    }

    #[test]
    fn states() {
        assert!(VmState::parse("running").is_running());
        assert!(VmState::parse("stopping").is_running());
        assert!(!VmState::parse("poweroff").is_running());
        assert_eq!(
            VmState::parse("gurumeditation"),
            VmState::Other("gurumeditation".into())
        );
    }

    #[test]
    fn error_on_stderr_with_exit_zero() {
        assert!(reports_error(
            "VBoxManage: error: Could not find a registered machine named 'x'"
        ));
        assert!(reports_error("noise\nVBoxManage.exe: error: boom"));
        assert!(!reports_error("0%...10%...100%"));
    }

    #[test]
    fn locate_prefers_install_path_then_path() {
        let missing = VBoxManageCli::locate_with(&|_| None).expect_err("nothing set");
        let text = missing.to_string();
        assert!(text.contains("install VirtualBox"), "{text}");
        assert!(text.contains("through its VBoxManage command"), "{text}");

        let empty = tempfile::tempdir().expect("tempdir");
        let path = empty.path().as_os_str().to_owned();
        let err = VBoxManageCli::locate_with(&|k| (k == "PATH").then(|| path.clone()))
            .expect_err("not on PATH");
        assert!(err.to_string().contains("$PATH"), "{err}");
    }
}

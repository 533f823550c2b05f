//! Steps every ISO builder shares, over the part of the state they share.

pub mod boot_batches;
pub mod checkpoint;
mod guest_stopped;
mod step_clear_temporary_key;
mod step_create_cd;
mod step_create_floppy;
mod step_fetch_iso;
mod step_http_server;
mod step_output_dir;
mod step_provision;
mod step_ssh_key_pair;
mod step_wait_ssh;

pub use guest_stopped::{GuestStopWatch, GuestStopped, free_space_beside};
pub use step_clear_temporary_key::StepClearTemporaryKey;
pub use step_create_cd::StepCreateCd;
pub use step_create_floppy::StepCreateFloppy;
pub use step_fetch_iso::{StepFetchIso, fetch_image};
pub use step_http_server::StepHttpServer;
pub use step_output_dir::StepOutputDir;
pub use step_provision::StepProvision;
pub use step_ssh_key_pair::StepSshKeyPair;
pub use step_wait_ssh::StepWaitSsh;

use std::path::PathBuf;
use std::sync::Arc;

use crate::communicator::ssh::SshSession;
use crate::config::common::{Communicator, HttpConfig, IsoConfig};
use crate::config::provisioner::Provisioner;
use crate::http::HttpServer;

use crate::run::RunOptions;

/// The state the shared steps read and write.
pub struct CommonState {
    pub build_name: String,
    pub build_type: String,
    pub options: RunOptions,
    pub iso: IsoConfig,
    pub http_config: HttpConfig,
    pub communicator: Communicator,
    pub provisioners: Vec<Provisioner>,
    /// `output_directory`: created by the build, removed after a failure.
    pub output_dir: PathBuf,
    pub error_cleanup_provisioner: Option<Provisioner>,
    /// Filled by the steps, in order.
    pub iso_path: Option<PathBuf>,
    /// The digest the ISO was verified against (`sha256:…`), when it was.
    pub iso_digest: Option<String>,
    pub http: Option<HttpServer>,
    /// The address the guest reaches the host's HTTP server at.
    pub http_ip: String,
    pub ssh_host_port: Option<u16>,
    pub ssh: Option<Arc<SshSession>>,
    /// The guest's serial console log, for errors.
    pub serial_log: Option<PathBuf>,
    /// `cd_files`/`cd_content`, and the image made of them.
    pub cd: crate::media::cd::CdSpec,
    pub cd_path: Option<PathBuf>,
    /// The key pair made for this build when the template gives no way to
    /// log in; kiln logs in with it.
    pub temporary_key: Option<crate::communicator::ssh::TemporaryKey>,
    /// `{{ .SSHPublicKey }}` (an authorized_keys line) and
    /// `{{ .SSHPrivateKey }}` (PEM): the temporary pair, or the pair of
    /// `ssh_private_key_file`, as Packer offers them; empty otherwise.
    pub ssh_public_key: String,
    pub ssh_private_key: String,
    /// `floppy_files`/`floppy_dirs`/`floppy_content`, and the image made of them.
    pub floppy: crate::media::floppy::FloppySpec,
    pub floppy_path: Option<PathBuf>,
}

/// The parts of a builder's config that every builder has.
#[derive(Clone, Copy)]
pub struct SharedConfig<'a> {
    pub iso: &'a IsoConfig,
    pub http: &'a HttpConfig,
    pub communicator: &'a Communicator,
    pub media: &'a crate::config::common::MediaConfig,
}

impl CommonState {
    /// The shared state of a fresh build, before any step has run.
    pub fn new(
        build: &crate::config::Build,
        options: &RunOptions,
        shared: SharedConfig<'_>,
        output_dir: PathBuf,
        http_ip: &str,
    ) -> Self {
        let SharedConfig {
            iso,
            http: http_config,
            communicator,
            media,
        } = shared;
        Self {
            build_name: build.name.clone(),
            build_type: build.type_name.clone(),
            options: options.clone(),
            iso: iso.clone(),
            http_config: http_config.clone(),
            communicator: communicator.clone(),
            provisioners: build.provisioners.clone(),
            output_dir,
            error_cleanup_provisioner: build.error_cleanup_provisioner.clone(),
            iso_path: None,
            iso_digest: None,
            http: None,
            http_ip: http_ip.to_owned(),
            ssh_host_port: None,
            ssh: None,
            serial_log: None,
            cd: media.cd.clone(),
            cd_path: None,
            temporary_key: None,
            ssh_public_key: String::new(),
            ssh_private_key: String::new(),
            floppy: media.floppy.clone(),
            floppy_path: None,
        }
    }

    /// The shared state of a build whose only shared part is the
    /// communicator (a cloud instance, a machine that already exists): no
    /// ISO, HTTP server or extra media, so the steps that use them are not
    /// in its list.
    pub fn communicator_only(
        build: &crate::config::Build,
        options: &RunOptions,
        communicator: &Communicator,
    ) -> Self {
        let iso = IsoConfig {
            urls: Vec::new(),
            checksum: String::new(),
            target_path: None,
            target_extension: "iso".to_owned(),
        };
        let http = HttpConfig {
            directory: None,
            content: std::collections::BTreeMap::new(),
            port_min: 8000,
            port_max: 9000,
            bind_address: "127.0.0.1".to_owned(),
        };
        let media = crate::config::common::MediaConfig::default();
        let shared = SharedConfig {
            iso: &iso,
            http: &http,
            communicator,
            media: &media,
        };
        Self::new(build, options, shared, PathBuf::new(), "")
    }

    pub fn http_port(&self) -> Option<u16> {
        self.http.as_ref().map(HttpServer::port)
    }

    /// `{{ .SSHPublicKey }}` and `{{ .SSHPrivateKey }}`.
    pub fn ssh_key_data(&self) -> std::collections::BTreeMap<String, String> {
        [
            ("SSHPublicKey", self.ssh_public_key.clone()),
            ("SSHPrivateKey", self.ssh_private_key.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Hides the private key in a text about to be shown (an error quoting
    /// a rendered template).
    pub fn without_private_key(&self, text: &str) -> String {
        if self.ssh_private_key.is_empty() {
            text.to_owned()
        } else {
            text.replace(self.ssh_private_key.as_str(), "<sensitive>")
        }
    }

    /// `{{ .HTTPIP }}` and `{{ .HTTPPort }}` for templates rendered at build time.
    pub fn http_data(&self) -> std::collections::BTreeMap<String, String> {
        let port = self.http_port().map(|p| p.to_string()).unwrap_or_default();
        [("HTTPIP", self.http_ip.clone()), ("HTTPPort", port)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }
}

/// What the shared steps need from a builder's state.
pub trait HasCommon: Send {
    fn common(&mut self) -> &mut CommonState;
    /// Resolves as soon as the VM stops by itself (a full host disk, a
    /// panic, a power-off, the hypervisor exiting), with the cause, so
    /// waiting for SSH can end at once; it never resolves while the VM runs.
    fn guest_stopped(&mut self) -> GuestStopWatch<'_>;
}

/// Runs `shutdown_command` over SSH, streaming its output. The connection
/// usually drops as the guest goes down, so a failure is reported, not
/// raised: the caller then waits for the VM to stop.
pub async fn run_shutdown_command(
    ssh: &SshSession,
    command: &str,
    ctx: &crate::run::runner::StepContext,
) {
    ctx.reporter.info(
        &ctx.build,
        &format!("Running the shutdown command: {command}"),
    );
    let reporter = ctx.reporter.clone();
    let build = ctx.build.clone();
    if let Err(e) = ssh
        .exec(command, |_, line| reporter.output_line(&build, line))
        .await
    {
        ctx.reporter
            .info(&ctx.build, &format!("shutdown command: {e}"));
    }
}

/// Waits `boot_wait` (saying so), then renders and parses `boot_command`
/// with the build-time values (`{{ .HTTPIP }}`, `{{ .Name }}`, …); `None`
/// when there is nothing to type.
pub async fn boot_command_actions(
    common: &CommonState,
    boot: &crate::config::common::BootConfig,
    vm_name: &str,
    ctx: &crate::run::runner::StepContext,
) -> Result<Option<Vec<crate::bootcmd::Action>>, crate::run::runner::StepError> {
    if boot.command.is_empty() {
        return Ok(None);
    }
    if !boot.wait.is_zero() {
        ctx.reporter.info(
            &ctx.build,
            &format!("Waiting {:?} for the VM to boot", boot.wait),
        );
        tokio::time::sleep(boot.wait).await;
    }
    let mut data = common.http_data();
    data.insert("Name".to_owned(), vm_name.to_owned());
    data.extend(common.ssh_key_data());
    let mut text = String::new();
    for d in &boot.command {
        text.push_str(&render_deferred(common, "boot_command", d, &data)?);
    }
    crate::bootcmd::parse(&text).map(Some).map_err(|e| {
        RenderFailure::BootCommand {
            text: common.without_private_key(&text),
            source: e,
        }
        .into()
    })
}

/// A template string that could be checked only once its build-time
/// values were known: bad input, as a validate-time error would be.
#[derive(Debug, thiserror::Error)]
pub enum RenderFailure {
    #[error("{key}: cannot render `{text}`")]
    Render {
        key: String,
        text: String,
        #[source]
        source: crate::template::interp::InterpError,
    },
    #[error("boot_command: cannot type `{text}`")]
    BootCommand {
        text: String,
        #[source]
        source: crate::bootcmd::BootCommandError,
    },
}

impl crate::run::runner::StepFailure for RenderFailure {
    fn class(&self) -> crate::run::runner::FailureClass {
        crate::run::runner::FailureClass::Input
    }
}

/// The last `lines` lines of the serial console as the end of an error
/// message (`"\nlast lines of its serial console:\n…"`), or nothing when
/// there is no console log or it is empty.
pub fn serial_note(path: Option<&PathBuf>, lines: usize) -> String {
    let tail = serial_tail(path, lines);
    if tail.is_empty() {
        String::new()
    } else {
        format!("\nlast lines of its serial console:\n{tail}")
    }
}

/// The last lines of the serial console, for errors about the guest.
fn serial_tail(path: Option<&PathBuf>, lines: usize) -> String {
    let Some(text) = path.and_then(|p| std::fs::read(p).ok()) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&text);
    // The guest's escape sequences must not reach the user's terminal.
    let all: Vec<String> = text
        .lines()
        .map(crate::ui::printable::printable)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// Renders a template string kept for this moment (`boot_command`,
/// `qemuargs`) with the build-time values in `data`.
pub fn render_deferred(
    common: &CommonState,
    key: &str,
    deferred: &crate::config::decode::Deferred,
    data: &std::collections::BTreeMap<String, String>,
) -> Result<String, crate::run::runner::StepError> {
    let ctx = common.options.render.context(data);
    deferred.template.render(&ctx).map_err(|e| {
        RenderFailure::Render {
            key: key.to_owned(),
            text: deferred.source().to_owned(),
            source: e,
        }
        .into()
    })
}

#[cfg(test)]
mod serial_tests {
    use super::*;

    #[test]
    fn the_serial_tail_has_no_escape_sequences() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("serial.log");
        std::fs::write(
            &log,
            "\u{1b}c\u{1b}[2J\u{1b}[H\u{1b}]0;pwned\u{7}booting\r\n\u{1b}[1;31mKernel panic\u{1b}[0m\r\n\u{1b}[2J\r\n",
        )
        .expect("write");
        let note = serial_note(Some(&log), 10);
        assert_eq!(
            note,
            "\nlast lines of its serial console:\nbooting\nKernel panic"
        );
    }
}

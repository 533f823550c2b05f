//! The `virtualbox-iso` builder: Packer's steps through `VBoxManage`,
//! sharing the ISO, HTTP, SSH and provisioning steps with the qemu builder.
//!
//! fetch ISO → fetch guest additions → output directory → install
//! checkpoint? → CD → create VM → disk (cloned from the checkpoint when
//! resuming) → ISOs → VRDP → HTTP server → NAT forward → vboxmanage →
//! start → boot command (none when resuming) → SSH → save the install
//! checkpoint → version file → guest additions upload → provision →
//! shut down → detach ISOs → vboxmanage_post → export; the VM is
//! unregistered and deleted afterwards unless `keep_registered`.

mod calls;
mod checkpoint_key;
mod error;
mod guest_additions;
mod specs;
mod step_attach_floppy;
mod step_attach_iso;
mod step_configure_vrdp;
mod step_create_disk;
mod step_create_vm;
mod step_detach_floppy;
mod step_detach_iso;
mod step_export;
mod step_find_checkpoint;
mod step_find_vboxmanage;
mod step_forward_ssh;
mod step_run_vm;
mod step_save_checkpoint;
mod step_shutdown;
mod step_type_boot_command;
mod step_upload_version;
mod step_vboxmanage_rows;

use error::VBoxStepError;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::common::{
    CommonState, GuestStopWatch, GuestStopped, HasCommon, SharedConfig, StepClearTemporaryKey,
    StepCreateCd, StepCreateFloppy, StepFetchIso, StepHttpServer, StepOutputDir, StepProvision,
    StepSshKeyPair, StepWaitSsh, free_space_beside,
};
use crate::artifact::{Artifact, Machine, Package};
use crate::config::Build;
use crate::config::virtualbox::VirtualBoxIsoConfig;
use crate::hypervisor::virtualbox::{VBoxManage, VBoxVersion, VmState};
use crate::run::runner::{Step, StepError};
use crate::run::{BuildResult, RunOptions};
use crate::ui::Reporter;

/// Packer's id for this builder; the vagrant post-processor picks virtualbox by it.
pub const BUILDER_ID: &str = crate::artifact::ids::VIRTUALBOX;

/// Where a VirtualBox NAT guest reaches the host.
pub const NAT_HOST_IP: &str = "10.0.2.2";

pub struct VBoxState {
    pub config: VirtualBoxIsoConfig,
    pub common: CommonState,
    pub vbox: Option<Arc<dyn VBoxManage>>,
    pub version: Option<VBoxVersion>,
    /// The guest additions ISO on this host, once fetched.
    pub guest_additions: Option<std::path::PathBuf>,
    /// The VRDP server's address and port, once configured.
    pub vrdp: Option<(String, u16)>,
    pub registered: bool,
    pub exported: Vec<std::path::PathBuf>,
    /// Whether this build saves an install checkpoint or resumes from one.
    pub checkpoint: super::common::checkpoint::CheckpointPlan,
}

impl VBoxState {
    pub fn vbox(&self) -> Result<Arc<dyn VBoxManage>, StepError> {
        self.vbox
            .clone()
            .ok_or_else(|| VBoxStepError::NotFound.into())
    }
}

impl HasCommon for VBoxState {
    fn common(&mut self) -> &mut CommonState {
        &mut self.common
    }

    fn guest_stopped(&mut self) -> GuestStopWatch<'_> {
        Box::pin(async move {
            let Some(vbox) = self.vbox.clone() else {
                return std::future::pending().await;
            };
            // VBoxManage has no event stream kiln can follow; its state is
            // polled, which costs up to one interval.
            loop {
                let info = vbox.showvminfo_machinereadable(&self.config.vm_name);
                let state = info.as_ref().map(|i| {
                    i.get("VMState")
                        .map_or(VmState::Other(String::new()), |s| VmState::parse(s))
                });
                match state {
                    Ok(VmState::Running | VmState::Starting) => {}
                    Ok(state) => {
                        let info = info.unwrap_or_default();
                        return describe_stop(&state, &info);
                    }
                    // The VM is gone; any other failure (a session lock held
                    // for a moment) says nothing about the guest: ask again.
                    Err(e @ crate::hypervisor::virtualbox::VBoxError::UnknownVm { .. }) => {
                        return GuestStopped::Gone(e.to_string());
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(VM_STATE_POLL).await;
            }
        })
    }
}

/// The cause of a stop, from `showvminfo --machinereadable` and the
/// runtime error VirtualBox logged in `VBox.log` when it suspended the VM
/// (VBoxManage itself reports no reason). A full host disk is named as
/// QEMU's is: the disk, the error and the free space beside it.
fn describe_stop(
    state: &VmState,
    info: &std::collections::BTreeMap<String, String>,
) -> GuestStopped {
    let name = info
        .get("VMState")
        .cloned()
        .unwrap_or_else(|| format!("{state:?}").to_lowercase());
    let log = info
        .get("LogFldr")
        .map(|d| std::path::Path::new(d).join("VBox.log"));
    let log_note = log
        .as_ref()
        .map(|l| format!("; VirtualBox's log {} says more", l.display()))
        .unwrap_or_default();
    let disk = info
        .values()
        .map(std::path::Path::new)
        .find(|p| p.extension().is_some_and(|e| e == "vdi" || e == "vmdk"));
    let runtime_error = log
        .as_deref()
        .and_then(crate::hypervisor::virtualbox::log::last_runtime_error);
    let detail = match (state, runtime_error) {
        (VmState::Paused, Some(e)) if e.is_disk_full() => {
            if let Some(disk) = disk {
                return GuestStopped::DiskFull {
                    path: disk.to_owned(),
                    free_bytes: free_space_beside(disk),
                };
            }
            Some(format!(
                "VirtualBox reports {}: {}{log_note}",
                e.id, e.message
            ))
        }
        (VmState::Paused, Some(e)) => Some(format!(
            "VirtualBox reports {}: {}{log_note}",
            e.id, e.message
        )),
        (VmState::Paused, None) => Some(match disk {
            Some(disk) => format!(
                "VirtualBox pauses a VM whose host disk is full; {} free beside its disk {}{log_note}",
                free_space_beside(disk).map_or_else(
                    || "unknown space".to_owned(),
                    crate::ui::console::format_bytes
                ),
                disk.display()
            ),
            None => format!("paused by VirtualBox or by someone{log_note}"),
        }),
        (VmState::Aborted, _) => Some(format!("the VM process ended abnormally{log_note}")),
        _ => None,
    };
    GuestStopped::VmState {
        state: name,
        detail,
    }
}

/// How often the VM's state is asked for while waiting on the guest.
const VM_STATE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

pub async fn run(
    build: &Build,
    config: &VirtualBoxIsoConfig,
    options: &RunOptions,
    reporter: Arc<dyn Reporter>,
    cancel: CancellationToken,
) -> BuildResult {
    let mut config = config.clone();
    // VirtualBox resolves relative paths against its own directory, not ours.
    config.output_directory = options.render.pwd().join(&config.output_directory);
    let mut state = VBoxState {
        common: CommonState::new(
            build,
            options,
            SharedConfig {
                iso: &config.iso,
                http: &config.http,
                communicator: &config.communicator,
                media: &config.media,
            },
            config.output_directory.clone(),
            NAT_HOST_IP,
        ),
        config,
        vbox: None,
        version: None,
        guest_additions: None,
        vrdp: None,
        registered: false,
        exported: Vec::new(),
        checkpoint: super::common::checkpoint::CheckpointPlan::Off,
    };
    let mut steps: Vec<Box<dyn Step<VBoxState>>> = vec![
        Box::new(step_find_vboxmanage::StepFindVBoxManage),
        Box::new(StepFetchIso),
        Box::new(guest_additions::StepFetchGuestAdditions),
        Box::new(StepOutputDir::default()),
        Box::new(StepSshKeyPair),
        Box::new(step_find_checkpoint::StepFindCheckpoint),
        Box::new(StepCreateFloppy::default()),
        Box::new(StepCreateCd::default()),
        Box::new(step_create_vm::StepCreateVm),
        Box::new(step_create_disk::StepCreateDisk),
        Box::new(step_attach_iso::StepAttachIso),
        Box::new(step_attach_floppy::StepAttachFloppy),
        Box::new(step_configure_vrdp::StepConfigureVrdp),
        Box::new(StepHttpServer),
        Box::new(step_forward_ssh::StepForwardSsh),
        Box::new(step_vboxmanage_rows::StepVBoxManageRows { post: false }),
        Box::new(step_run_vm::StepRunVm),
        Box::new(step_type_boot_command::StepTypeBootCommand),
        Box::new(StepWaitSsh),
        Box::new(step_save_checkpoint::StepSaveCheckpoint::default()),
        Box::new(step_upload_version::StepUploadVersion),
        Box::new(guest_additions::StepUploadGuestAdditions),
        Box::new(StepProvision),
        Box::new(StepClearTemporaryKey),
        Box::new(step_shutdown::StepShutdown),
        Box::new(step_detach_iso::StepDetachIso),
        Box::new(step_detach_floppy::StepDetachFloppy),
        Box::new(step_vboxmanage_rows::StepVBoxManageRows { post: true }),
        Box::new(step_export::StepExport),
    ];
    super::run_builder(
        build,
        options,
        reporter,
        cancel,
        &mut steps,
        &mut state,
        |state| {
            let (package, disks) = Package::from_export(&state.exported);
            Artifact {
                builder_id: BUILDER_ID,
                build_name: build.name.clone(),
                build_type: build.type_name.clone(),
                files: state.exported.clone(),
                id: state.config.vm_name.clone(),
                disks,
                package,
                machine: Some(Machine {
                    accelerator: None,
                    cpus: state.config.cpus,
                    memory_mib: state.config.memory_mib,
                }),
                state: std::collections::BTreeMap::new(),
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_vm_names_its_disk_the_free_space_and_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = dir.path().join("packer-vbox.vdi");
        let info: std::collections::BTreeMap<String, String> = [
            ("VMState", "paused".to_owned()),
            ("LogFldr", dir.path().join("Logs").display().to_string()),
            ("SATA Controller-0-0", disk.display().to_string()),
            ("IDE Controller-1-0", "/cache/installer.iso".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let text = describe_stop(&VmState::Paused, &info).to_string();
        assert!(
            text.starts_with("the VM is paused: VirtualBox pauses a VM whose host disk is full; "),
            "{text}"
        );
        assert!(
            text.contains(&format!("free beside its disk {}", disk.display())),
            "{text}"
        );
        assert!(text.contains("Logs/VBox.log says more"), "{text}");
        // With VirtualBox's runtime error in its log, a full disk is named
        // as QEMU's is.
        std::fs::create_dir(dir.path().join("Logs")).expect("mkdir");
        std::fs::write(
            dir.path().join("Logs/VBox.log"),
            "00:01:02.345900 Console: VM runtime error: fatal=false, errorID=DrvVD_DISKFULL message=\"Host system reported disk full.\"\n",
        )
        .expect("write");
        let full = describe_stop(&VmState::Paused, &info);
        assert!(matches!(full, GuestStopped::DiskFull { .. }), "{full:?}");
        assert!(
            full.to_string().contains(&format!(
                "its disk {} is full: no space left on device",
                disk.display()
            )),
            "{full}"
        );
        std::fs::write(
            dir.path().join("Logs/VBox.log"),
            "Console: VM runtime error: fatal=false, errorID=BLKCACHE_IOERR message=\"The I/O cache encountered an error\"\n",
        )
        .expect("write");
        let other = describe_stop(&VmState::Paused, &info).to_string();
        assert!(
            other.starts_with("the VM is paused: VirtualBox reports BLKCACHE_IOERR: The I/O cache encountered an error"),
            "{other}"
        );
        let mut aborted = info.clone();
        aborted.insert("VMState".into(), "aborted".into());
        let aborted = describe_stop(&VmState::Aborted, &aborted).to_string();
        assert!(
            aborted.starts_with("the VM is aborted: the VM process ended abnormally"),
            "{aborted}"
        );
        let off = describe_stop(&VmState::PowerOff, &std::collections::BTreeMap::new()).to_string();
        assert_eq!(off, "the VM is poweroff");
    }
}

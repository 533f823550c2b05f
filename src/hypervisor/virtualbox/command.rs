//! The VBoxManage commands of a `virtualbox-iso` build, built in order from
//! typed descriptions (golden-tested in `tests.rs`).
//!
//! The order and spelling follow Packer's VirtualBox builder, so a template
//! gives the VM Packer would have made: create and configure the VM, create
//! and attach the disk, attach the ISO, NAT and the SSH forward, the user's
//! `vboxmanage` rows, start, type the boot command; after provisioning:
//! shut down, detach the ISO, `vboxmanage_post`, drop the forward, export,
//! unregister.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bootcmd::Action;
use crate::bootcmd::scancode::{self, VboxStep};

/// The program's name on PATH.
pub const VBOXMANAGE: &str = "VBoxManage";

/// The name Packer gives the SSH forwarding rule; kept so that templates'
/// `vboxmanage_post` rows that delete it still work.
pub const SSH_RULE_NAME: &str = "packercomm";

/// One `VBoxManage` invocation's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VBoxCommand(Vec<OsString>);

impl VBoxCommand {
    fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self(args.into_iter().map(Into::into).collect())
    }

    /// A command given verbatim (a rendered `vboxmanage` row).
    pub fn verbatim(args: Vec<String>) -> Self {
        Self::new(args)
    }

    pub fn args(&self) -> &[OsString] {
        &self.0
    }

    fn push(&mut self, arg: impl Into<OsString>) -> &mut Self {
        self.0.push(arg.into());
        self
    }
}

/// `VBoxManage ARGS…` shell-quoted, for logs and golden tests.
impl std::fmt::Display for VBoxCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::host::command_line::display_command(
            VBOXMANAGE.as_ref(),
            &self.0,
        ))
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The VM itself: what `createvm` and the `modifyvm` calls after it set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub name: String,
    /// `guest_os_type`, a VirtualBox OS type id (`Debian_64`, `Other`).
    pub os_type: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub usb: bool,
    /// `sound`: `none`, or an audio driver (`pulse`, `alsa`, `dsound`, …).
    pub audio: String,
    /// `piix3` or `ich9`.
    pub chipset: String,
    /// `bios` or `efi`.
    pub firmware: String,
    /// `nic_type` of the first NIC; VirtualBox's default when absent.
    pub nic_type: Option<String>,
    pub gfx_controller: Option<String>,
    pub gfx_vram_mib: Option<u64>,
    /// `--accelerate3d`; left at VirtualBox's default when None.
    pub accelerate_3d: Option<bool>,
    /// `WIDTHxHEIGHT`, set as the `VBoxInternal2/EfiGraphicsResolution`
    /// extradata (how Packer's plugin sets it; modifyvm has no option).
    pub efi_resolution: Option<String>,
    /// `--nested-hw-virt`; left at VirtualBox's default when None.
    pub nested_virt: Option<bool>,
    /// `--rtcuseutc`: true for UTC, false for local time.
    pub rtc_utc: Option<bool>,
    /// `--audiocontroller`: `ac97`, `hda`, `sb16`.
    pub audio_controller: Option<String>,
    /// USB controllers turned on: `ohci`, `ehci`, `xhci`.
    pub usb_controllers: Vec<String>,
}

impl VmSpec {
    /// `createvm` then one `modifyvm` per setting (as Packer does: an error
    /// then names the one setting VirtualBox refused). Boot order: disk,
    /// then DVD, so the installed system boots once the installer is done.
    pub fn create_commands(&self) -> Vec<VBoxCommand> {
        let n = self.name.as_str();
        let mut out = vec![
            VBoxCommand::new([
                "createvm",
                "--name",
                n,
                "--ostype",
                &self.os_type,
                "--register",
            ]),
            VBoxCommand::new([
                "modifyvm", n, "--boot1", "disk", "--boot2", "dvd", "--boot3", "none", "--boot4",
                "none",
            ]),
            VBoxCommand::new(["modifyvm", n, "--cpus", &self.cpus.to_string()]),
            VBoxCommand::new(["modifyvm", n, "--memory", &self.memory_mib.to_string()]),
            VBoxCommand::new(["modifyvm", n, "--usb", on_off(self.usb)]),
        ];
        if self.audio.eq_ignore_ascii_case("none") {
            out.push(VBoxCommand::new(["modifyvm", n, "--audio", "none"]));
        } else {
            out.push(VBoxCommand::new([
                "modifyvm",
                n,
                "--audio",
                &self.audio,
                "--audioin",
                "on",
                "--audioout",
                "on",
            ]));
        }
        out.push(VBoxCommand::new([
            "modifyvm",
            n,
            "--chipset",
            &self.chipset,
        ]));
        out.push(VBoxCommand::new([
            "modifyvm",
            n,
            "--firmware",
            &self.firmware,
        ]));
        if let Some(nic) = &self.nic_type {
            out.push(VBoxCommand::new(["modifyvm", n, "--nictype1", nic]));
        }
        if self.gfx_controller.is_some() || self.gfx_vram_mib.is_some() {
            let mut c = VBoxCommand::new(["modifyvm", n]);
            if let Some(g) = &self.gfx_controller {
                c.push("--graphicscontroller").push(g);
            }
            if let Some(v) = self.gfx_vram_mib {
                c.push("--vram").push(v.to_string());
            }
            out.push(c);
        }
        out.extend(self.extra_hardware_commands());
        out
    }

    /// The later plugin keys, each its own `modifyvm` as Packer's plugin
    /// does, and only when the template sets it.
    fn extra_hardware_commands(&self) -> Vec<VBoxCommand> {
        let n = self.name.as_str();
        let mut out = Vec::new();
        if let Some(ac) = &self.audio_controller {
            out.push(VBoxCommand::new(["modifyvm", n, "--audiocontroller", ac]));
        }
        if let Some(utc) = self.rtc_utc {
            out.push(VBoxCommand::new([
                "modifyvm",
                n,
                "--rtcuseutc",
                on_off(utc),
            ]));
        }
        if let Some(nested) = self.nested_virt {
            out.push(VBoxCommand::new([
                "modifyvm",
                n,
                "--nested-hw-virt",
                on_off(nested),
            ]));
        }
        if let Some(acc) = self.accelerate_3d {
            out.push(VBoxCommand::new([
                "modifyvm",
                n,
                "--accelerate3d",
                on_off(acc),
            ]));
        }
        if let Some(res) = &self.efi_resolution {
            out.push(VBoxCommand::new([
                "setextradata",
                n,
                "VBoxInternal2/EfiGraphicsResolution",
                res,
            ]));
        }
        for usb in &self.usb_controllers {
            let opt = format!("--usb{usb}");
            out.push(VBoxCommand::new(["modifyvm", n, &opt, "on"]));
        }
        out
    }
}

/// A storage controller kind (`hard_drive_interface`, `iso_interface`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageBus {
    Ide,
    Sata,
    /// LsiLogic SCSI.
    Scsi,
    /// NVMe (`pcie`; kiln also accepts `nvme`).
    Pcie,
    /// virtio-scsi.
    Virtio,
}

impl StorageBus {
    /// The controller's name in the VM, as Packer names it.
    pub fn controller_name(self) -> &'static str {
        match self {
            Self::Ide => "IDE Controller",
            Self::Sata => "SATA Controller",
            Self::Scsi => "SCSI Controller",
            Self::Pcie => "NVMe Controller",
            Self::Virtio => "VirtIO Controller",
        }
    }

    /// `storagectl VM --name … --add …`; `port_count` for the buses that take one.
    pub fn storagectl(self, vm: &str, port_count: u32) -> VBoxCommand {
        let name = self.controller_name();
        let mut c = VBoxCommand::new(["storagectl", vm, "--name", name, "--add"]);
        match self {
            Self::Ide => {
                c.push("ide");
            }
            Self::Sata => {
                c.push("sata")
                    .push("--portcount")
                    .push(port_count.to_string());
            }
            Self::Scsi => {
                c.push("scsi").push("--controller").push("LSILogic");
            }
            Self::Pcie => {
                c.push("pcie")
                    .push("--controller")
                    .push("NVMe")
                    .push("--portcount")
                    .push(port_count.to_string());
            }
            Self::Virtio => {
                c.push("virtio")
                    .push("--controller")
                    .push("VirtIO")
                    .push("--portcount")
                    .push(port_count.to_string());
            }
        }
        c
    }
}

/// The hard disk: created as a VDI in the output directory and attached at
/// port 0, device 0 of its controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    pub path: PathBuf,
    pub size_mib: u64,
    pub bus: StorageBus,
    /// Where the boot ISO goes: a SATA controller is added for either.
    pub iso_bus: StorageBus,
    /// Where attached guest additions go (`guest_additions_mode` "attach").
    pub additions_bus: Option<StorageBus>,
    /// Whether a `cd_files` CD goes in a drive of `iso_bus` too.
    pub cd_files: bool,
    pub sata_port_count: u32,
    pub nvme_port_count: u32,
    pub nonrotational: bool,
    pub discard: bool,
    /// `disk_additional_size`: each disk's file and size, attached at
    /// ports 1, 2, … of the disk's controller.
    pub additional: Vec<(PathBuf, u64)>,
}

impl DiskSpec {
    /// `createmedium`, the controllers, `storageattach`. The IDE controller
    /// is always added: the DVD drive (and guest additions) live there
    /// unless `iso_interface` says otherwise.
    pub fn create_commands(&self, vm: &str) -> Vec<VBoxCommand> {
        self.create_commands_from(vm, None)
    }

    /// As [`Self::create_commands`], the boot disk cloned from `boot_disk`
    /// (an install checkpoint) instead of created empty. The caller closes
    /// the checkpoint afterwards ([`close_medium`]), so VirtualBox's
    /// registry does not keep a cache file.
    pub fn create_commands_from(&self, vm: &str, boot_disk: Option<&Path>) -> Vec<VBoxCommand> {
        // All disks first, then the controllers, then the attachments, as
        // Packer's plugin orders them.
        let mut out: Vec<VBoxCommand> = match boot_disk {
            Some(source) => vec![clone_medium(source, &self.path)],
            None => vec![create_medium(&self.path, self.size_mib)],
        };
        out.extend(
            self.additional
                .iter()
                .map(|(path, size)| create_medium(path, *size)),
        );
        out.push(StorageBus::Ide.storagectl(vm, 0));
        // The port count as given: `storageattach` grows it to reach a
        // DVD slot (ports 13-15), as VBoxManage does.
        if self.uses(StorageBus::Sata) {
            out.push(StorageBus::Sata.storagectl(vm, self.sata_port_count));
        }
        if self.uses(StorageBus::Virtio) {
            out.push(StorageBus::Virtio.storagectl(vm, 1));
        }
        match self.bus {
            StorageBus::Ide | StorageBus::Sata | StorageBus::Virtio => {}
            StorageBus::Pcie => out.push(StorageBus::Pcie.storagectl(vm, self.nvme_port_count)),
            StorageBus::Scsi => out.push(StorageBus::Scsi.storagectl(vm, 0)),
        }
        let disks = std::iter::once(&self.path).chain(self.additional.iter().map(|(p, _)| p));
        for (port, path) in disks.enumerate() {
            let port = port.to_string();
            let mut attach = VBoxCommand::new([
                "storageattach",
                vm,
                "--storagectl",
                self.bus.controller_name(),
                "--port",
                &port,
                "--device",
                "0",
                "--type",
                "hdd",
                "--medium",
            ]);
            attach
                .push(path)
                .push("--nonrotational")
                .push(on_off(self.nonrotational))
                .push("--discard")
                .push(on_off(self.discard));
            out.push(attach);
        }
        out
    }
}

/// `createmedium disk` of a dynamically allocated VDI.
fn create_medium(path: &std::path::Path, size_mib: u64) -> VBoxCommand {
    VBoxCommand::new([
        OsString::from("createmedium"),
        "disk".into(),
        "--filename".into(),
        path.into(),
        "--size".into(),
        size_mib.to_string().into(),
        "--format".into(),
        "VDI".into(),
        "--variant".into(),
        "Standard".into(),
    ])
}

impl DiskSpec {
    /// The DVD slots this build fills.
    fn dvd_slots(&self) -> impl Iterator<Item = IsoAttachment> {
        [
            Some(IsoAttachment::boot_iso(self.iso_bus)),
            self.additions_bus.map(IsoAttachment::guest_additions),
            self.cd_files.then(|| IsoAttachment::cd_files(self.iso_bus)),
        ]
        .into_iter()
        .flatten()
    }

    /// Whether the disk or a DVD slot sits on `bus` (its controller is
    /// then added; Packer adds the SATA one only for the disk and the boot
    /// ISO, so SATA guest additions alone fail there).
    pub fn uses(&self, bus: StorageBus) -> bool {
        self.bus == bus || self.dvd_slots().any(|slot| slot.bus == bus)
    }
}

/// Where a DVD image is attached: Packer's slots. On IDE the boot ISO at
/// 0:1, guest additions at 1:0, `cd_files` at 1:1; on SATA or VirtIO ports
/// 13, 14 and 15, above the disks (VBoxManage grows the port count to reach
/// them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoAttachment {
    pub bus: StorageBus,
    pub port: u32,
    pub device: u32,
}

impl IsoAttachment {
    fn slot(bus: StorageBus, ide: (u32, u32), high_port: u32) -> Self {
        match bus {
            StorageBus::Sata | StorageBus::Virtio => Self {
                bus,
                port: high_port,
                device: 0,
            },
            _ => Self {
                bus: StorageBus::Ide,
                port: ide.0,
                device: ide.1,
            },
        }
    }

    pub fn boot_iso(bus: StorageBus) -> Self {
        Self::slot(bus, (0, 1), 13)
    }

    pub fn guest_additions(bus: StorageBus) -> Self {
        Self::slot(bus, (1, 0), 14)
    }

    pub fn cd_files(bus: StorageBus) -> Self {
        Self::slot(bus, (1, 1), 15)
    }

    fn storageattach(&self, vm: &str, medium: OsString) -> VBoxCommand {
        let mut c = VBoxCommand::new([
            "storageattach",
            vm,
            "--storagectl",
            self.bus.controller_name(),
        ]);
        c.push("--port")
            .push(self.port.to_string())
            .push("--device")
            .push(self.device.to_string())
            .push("--type")
            .push("dvddrive")
            .push("--medium")
            .push(medium);
        c
    }

    /// Inserts `iso` (the step resolves symlinks first, as Packer does).
    pub fn attach(&self, vm: &str, iso: &Path) -> VBoxCommand {
        self.storageattach(vm, iso.into())
    }

    /// Empties the drive again (before export, unless `bundle_iso`).
    pub fn detach(&self, vm: &str) -> VBoxCommand {
        self.storageattach(vm, "none".into())
    }
}

/// The floppy drive, as Packer makes it: its own controller ("Floppy
/// Controller", an I82078) with the image at port 0, device 0; removed
/// again after shutdown so the exported VM does not point at a deleted file.
pub mod floppy {
    use std::path::Path;

    use super::VBoxCommand;

    pub const CONTROLLER: &str = "Floppy Controller";

    fn storageattach(vm: &str, medium: &std::ffi::OsStr) -> VBoxCommand {
        let mut c = VBoxCommand::new(["storageattach", vm, "--storagectl", CONTROLLER]);
        c.push("--port")
            .push("0")
            .push("--device")
            .push("0")
            .push("--type")
            .push("fdd")
            .push("--medium")
            .push(medium);
        c
    }

    /// Adds the controller and inserts `image`.
    pub fn attach(vm: &str, image: &Path) -> Vec<VBoxCommand> {
        vec![
            VBoxCommand::new(["storagectl", vm, "--name", CONTROLLER, "--add", "floppy"]),
            storageattach(vm, image.as_os_str()),
        ]
    }

    /// Empties the drive and removes the controller.
    pub fn detach(vm: &str) -> Vec<VBoxCommand> {
        vec![
            storageattach(vm, "none".as_ref()),
            VBoxCommand::new(["storagectl", vm, "--name", CONTROLLER, "--remove"]),
        ]
    }
}

/// `--natpf1` rule on loopback only: nothing but this host reaches the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatRule {
    pub name: String,
    pub host_port: u16,
    pub guest_port: u16,
}

impl NatRule {
    pub fn ssh(host_port: u16, guest_port: u16) -> Self {
        Self {
            name: SSH_RULE_NAME.into(),
            host_port,
            guest_port,
        }
    }

    /// `NAME,tcp,127.0.0.1,HOST,,GUEST` as `modifyvm --natpf1` and
    /// `showvminfo` (`Forwarding(0)=`) spell it.
    pub fn spec(&self) -> String {
        format!(
            "{},tcp,127.0.0.1,{},,{}",
            self.name, self.host_port, self.guest_port
        )
    }

    /// `modifyvm --nic1 nat`, then the rule (Packer's order: the NIC must
    /// be NAT for the rule to exist).
    pub fn add_commands(&self, vm: &str) -> Vec<VBoxCommand> {
        vec![
            VBoxCommand::new(["modifyvm", vm, "--nic1", "nat"]),
            VBoxCommand::new(["modifyvm".into(), vm.into(), "--natpf1".into(), self.spec()]),
        ]
    }

    /// Removes the rule before export, so the exported VM carries no forward.
    pub fn delete_command(&self, vm: &str) -> VBoxCommand {
        VBoxCommand::new(["modifyvm", vm, "--natpf1", "delete", &self.name])
    }
}

/// Turns on the VRDE (remote display) server on `address:port` without
/// authentication, as Packer does so a headless build can be watched.
pub fn vrde_on(vm: &str, address: &str, port: u16) -> VBoxCommand {
    VBoxCommand::new([
        "modifyvm",
        vm,
        "--vrdeaddress",
        address,
        "--vrdeauthtype",
        "null",
        "--vrde",
        "on",
        "--vrdeport",
        &port.to_string(),
    ])
}

/// `startvm VM --type headless|gui`.
pub fn startvm(vm: &str, headless: bool) -> VBoxCommand {
    VBoxCommand::new([
        "startvm",
        vm,
        "--type",
        if headless { "headless" } else { "gui" },
    ])
}

/// `controlvm VM keyboardputscancode XX XX …`.
pub fn keyboard_put_scancode(vm: &str, hex_codes: &[String]) -> VBoxCommand {
    let mut c = VBoxCommand::new(["controlvm", vm, "keyboardputscancode"]);
    for code in hex_codes {
        c.push(code);
    }
    c
}

/// What typing the boot command does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootCommandStep {
    Run(VBoxCommand),
    Wait(Duration),
}

/// The boot command's actions as `keyboardputscancode` calls of at most
/// `max_codes` codes each, with the waits between them.
pub fn boot_command_steps(vm: &str, actions: &[Action], max_codes: usize) -> Vec<BootCommandStep> {
    scancode::vbox_steps(actions, max_codes)
        .into_iter()
        .map(|s| match s {
            VboxStep::PutScancodes(codes) => {
                BootCommandStep::Run(keyboard_put_scancode(vm, &codes))
            }
            VboxStep::Wait(d) => BootCommandStep::Wait(d),
        })
        .collect()
}

/// `controlvm VM poweroff`: pulls the plug.
pub fn poweroff(vm: &str) -> VBoxCommand {
    VBoxCommand::new(["controlvm", vm, "poweroff"])
}

/// `controlvm VM acpipowerbutton`: asks the guest to shut down (`acpi_shutdown`).
pub fn acpi_power_button(vm: &str) -> VBoxCommand {
    VBoxCommand::new(["controlvm", vm, "acpipowerbutton"])
}

/// `showvminfo VM --machinereadable` (what [`super::VBoxManage::vm_state`] runs).
pub fn showvminfo(vm: &str) -> VBoxCommand {
    VBoxCommand::new(["showvminfo", vm, "--machinereadable"])
}

/// `unregistervm VM --delete`: the VM and the disks attached to it.
pub fn unregister_delete(vm: &str) -> VBoxCommand {
    VBoxCommand::new(["unregistervm", vm, "--delete"])
}

/// `snapshot VM take NAME --description TEXT`: freezes the VM's disks (a
/// running VM writes to differencing images from then on), so they can be
/// cloned while the guest runs on.
pub fn snapshot_take(vm: &str, name: &str, description: &str) -> VBoxCommand {
    VBoxCommand::new(["snapshot", vm, "take", name, "--description", description])
}

/// `snapshot VM delete NAME`: merges the differencing images back (online
/// when the VM runs), leaving the VM as if no snapshot had been taken.
pub fn snapshot_delete(vm: &str, name: &str) -> VBoxCommand {
    VBoxCommand::new(["snapshot", vm, "delete", name])
}

/// `clonemedium disk SOURCE TARGET --format VDI`: a standalone copy with a
/// new UUID (VirtualBox refuses two media with one UUID), registered.
pub fn clone_medium(source: &Path, target: &Path) -> VBoxCommand {
    VBoxCommand::new([
        OsString::from("clonemedium"),
        "disk".into(),
        source.into(),
        target.into(),
        "--format".into(),
        "VDI".into(),
    ])
}

/// `closemedium disk PATH`: VirtualBox forgets the medium; the file stays.
pub fn close_medium(path: &Path) -> VBoxCommand {
    VBoxCommand::new([OsString::from("closemedium"), "disk".into(), path.into()])
}

/// `export VM --output OUTPUT_DIR/NAME.ovf|ova [--manifest] [export_opts…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    pub output: PathBuf,
    /// `--manifest`: a `.mf` with the files' digests.
    pub manifest: bool,
    /// `export_opts`, appended as given.
    pub options: Vec<String>,
}

impl ExportSpec {
    pub fn command(&self, vm: &str) -> VBoxCommand {
        let mut c = VBoxCommand::new(["export", vm, "--output"]);
        c.push(&self.output);
        if self.manifest && !self.options.iter().any(|o| o == "--manifest") {
            c.push("--manifest");
        }
        for o in &self.options {
            c.push(o);
        }
        c
    }
}

/// Renders `vboxmanage` / `vboxmanage_post` rows with `{{ .Name }}` = the
/// VM's name, through the builder's renderer (which knows user variables
/// and the build's context).
pub fn render_vboxmanage_rows<T, E>(
    rows: &[Vec<T>],
    vm: &str,
    mut render: impl FnMut(&T, &BTreeMap<String, String>) -> Result<String, E>,
) -> Result<Vec<VBoxCommand>, E> {
    let data = BTreeMap::from([("Name".to_owned(), vm.to_owned())]);
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|part| render(part, &data))
                .collect::<Result<Vec<_>, E>>()
                .map(VBoxCommand::verbatim)
        })
        .collect()
}

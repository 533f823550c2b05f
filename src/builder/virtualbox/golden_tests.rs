//! Golden tests: the exact VBoxManage argv of whole builds, from templates.

use std::path::Path;

use std::collections::BTreeMap;

use super::*;
use crate::config::decode::Deferred;
use crate::config::{BuilderConfig, Selection};
use crate::hypervisor::virtualbox::command::*;
use crate::template::interp::Context;

fn config(text: &str) -> VirtualBoxIsoConfig {
    let (mut prepared, diags) = crate::config::prepare_text(text, &Selection::default());
    assert!(!diags.has_errors(), "{diags:?}");
    match prepared.builds.remove(0).builder {
        BuilderConfig::VirtualBoxIso(c) => *c,
        other => panic!("not virtualbox-iso: {other:?}"),
    }
}

fn render(d: &Deferred, data: &BTreeMap<String, String>) -> Result<String, String> {
    let ctx = Context {
        data,
        ..Context::minimal()
    };
    d.template.render(&ctx).map_err(|e| e.to_string())
}

/// Every VBoxManage call of a build, in the order the builder makes them,
/// one per line; waits as comments. SSH and provisioning happen between
/// the boot command and the state check and call no VBoxManage.
fn build_sequence(c: &VirtualBoxIsoConfig, iso: &Path, host_port: u16) -> String {
    let vm = vm_spec(c);
    let disk = disk_spec(c);
    let boot_iso = IsoAttachment::boot_iso(disk.iso_bus);
    let nat = NatRule::ssh(host_port, 22);
    let data = BTreeMap::from([
        ("HTTPIP".to_owned(), "10.0.2.2".to_owned()),
        ("HTTPPort".to_owned(), "8080".to_owned()),
    ]);
    let boot_text: String = c
        .boot
        .command
        .iter()
        .map(|d| render(d, &data).expect("renders"))
        .collect();
    let actions = crate::bootcmd::parse(&boot_text).expect("boot command parses");
    let n = vm.name.as_str();

    let mut lines: Vec<String> = Vec::new();
    let mut add = |cmds: Vec<VBoxCommand>| lines.extend(cmds.iter().map(ToString::to_string));
    add(vm.create_commands());
    add(disk.create_commands(n));
    add(vec![boot_iso.attach(n, iso)]);
    add(nat.add_commands(n));
    add(render_vboxmanage_rows(&c.vboxmanage, n, render).expect("renders"));
    add(vec![startvm(n, c.headless)]);
    for step in boot_command_steps(n, &actions, crate::bootcmd::scancode::MAX_CODES_PER_CALL) {
        match step {
            BootCommandStep::Run(cmd) => lines.push(cmd.to_string()),
            BootCommandStep::Wait(d) => lines.push(format!("# wait {d:?}")),
        }
    }
    lines.push(showvminfo(n).to_string());
    lines.push(boot_iso.detach(n).to_string());
    lines.extend(
        render_vboxmanage_rows(&c.vboxmanage_post, n, render)
            .expect("renders")
            .iter()
            .map(ToString::to_string),
    );
    lines.push(nat.delete_command(n).to_string());
    lines.push(export_spec(c).command(n).to_string());
    lines.push(unregister_delete(n).to_string());
    lines.join("\n")
}

#[test]
fn default_build() {
    let c = config(
        r#"{"builders": [{
            "type": "virtualbox-iso",
            "iso_url": "/isos/tiny.iso", "iso_checksum": "none",
            "ssh_username": "root", "ssh_password": "toor",
            "shutdown_command": "poweroff",
            "headless": true,
            "boot_command": ["<esc><wait>in <enter>"],
            "vboxmanage": [["modifyvm", "{{.Name}}", "--uart1", "0x3F8", "4"]],
            "vboxmanage_post": [["modifyvm", "{{ .Name }}", "--memory", "256"]]
        }]}"#,
    );
    let expected = "\
VBoxManage createvm --name packer-virtualbox-iso-0 --ostype Other --register
VBoxManage modifyvm packer-virtualbox-iso-0 --boot1 disk --boot2 dvd --boot3 none --boot4 none
VBoxManage modifyvm packer-virtualbox-iso-0 --cpus 1
VBoxManage modifyvm packer-virtualbox-iso-0 --memory 512
VBoxManage modifyvm packer-virtualbox-iso-0 --usb off
VBoxManage modifyvm packer-virtualbox-iso-0 --audio none
VBoxManage modifyvm packer-virtualbox-iso-0 --chipset piix3
VBoxManage modifyvm packer-virtualbox-iso-0 --firmware bios
VBoxManage createmedium disk --filename output-virtualbox-iso/packer-virtualbox-iso-0.vdi --size 40000 --format VDI --variant Standard
VBoxManage storagectl packer-virtualbox-iso-0 --name 'IDE Controller' --add ide
VBoxManage storageattach packer-virtualbox-iso-0 --storagectl 'IDE Controller' --port 0 --device 0 --type hdd --medium output-virtualbox-iso/packer-virtualbox-iso-0.vdi --nonrotational off --discard off
VBoxManage storageattach packer-virtualbox-iso-0 --storagectl 'IDE Controller' --port 0 --device 1 --type dvddrive --medium /isos/tiny.iso
VBoxManage modifyvm packer-virtualbox-iso-0 --nic1 nat
VBoxManage modifyvm packer-virtualbox-iso-0 --natpf1 packercomm,tcp,127.0.0.1,3022,,22
VBoxManage modifyvm packer-virtualbox-iso-0 --uart1 0x3F8 4
VBoxManage startvm packer-virtualbox-iso-0 --type headless
VBoxManage controlvm packer-virtualbox-iso-0 keyboardputscancode 01 81
# wait 1s
VBoxManage controlvm packer-virtualbox-iso-0 keyboardputscancode 17 97 31 b1 39 b9 1c 9c
VBoxManage showvminfo packer-virtualbox-iso-0 --machinereadable
VBoxManage storageattach packer-virtualbox-iso-0 --storagectl 'IDE Controller' --port 0 --device 1 --type dvddrive --medium none
VBoxManage modifyvm packer-virtualbox-iso-0 --memory 256
VBoxManage modifyvm packer-virtualbox-iso-0 --natpf1 delete packercomm
VBoxManage export packer-virtualbox-iso-0 --output output-virtualbox-iso/packer-virtualbox-iso-0.ovf
VBoxManage unregistervm packer-virtualbox-iso-0 --delete";
    assert_eq!(
        build_sequence(&c, Path::new("/isos/tiny.iso"), 3022),
        expected
    );
}

#[test]
fn sata_efi_ova_build() {
    let c = config(
        r#"{"builders": [{
            "type": "virtualbox-iso",
            "vm_name": "tiny", "guest_os_type": "Debian_64",
            "iso_url": "/isos/tiny.iso", "iso_checksum": "none",
            "ssh_username": "root", "ssh_password": "toor",
            "shutdown_command": "poweroff",
            "output_directory": "/out",
            "cpus": 2, "memory": 1024, "disk_size": 2048,
            "hard_drive_interface": "sata", "iso_interface": "sata",
            "sata_port_count": 4,
            "hard_drive_nonrotational": true, "hard_drive_discard": true,
            "firmware": "efi", "chipset": "ich9", "nic_type": "virtio",
            "gfx_controller": "vmsvga", "gfx_vram_size": 16,
            "usb": true, "sound": "pulse",
            "format": "ova",
            "export_opts": ["--manifest", "--vsys", "0", "--description", "tiny box"],
            "boot_command": ["x<enter>"]
        }]}"#,
    );
    let expected = "\
VBoxManage createvm --name tiny --ostype Debian_64 --register
VBoxManage modifyvm tiny --boot1 disk --boot2 dvd --boot3 none --boot4 none
VBoxManage modifyvm tiny --cpus 2
VBoxManage modifyvm tiny --memory 1024
VBoxManage modifyvm tiny --usb on
VBoxManage modifyvm tiny --audio pulse --audioin on --audioout on
VBoxManage modifyvm tiny --chipset ich9
VBoxManage modifyvm tiny --firmware efi
VBoxManage modifyvm tiny --nictype1 virtio
VBoxManage modifyvm tiny --graphicscontroller vmsvga --vram 16
VBoxManage createmedium disk --filename /out/tiny.vdi --size 2048 --format VDI --variant Standard
VBoxManage storagectl tiny --name 'IDE Controller' --add ide
VBoxManage storagectl tiny --name 'SATA Controller' --add sata --portcount 4
VBoxManage storageattach tiny --storagectl 'SATA Controller' --port 0 --device 0 --type hdd --medium /out/tiny.vdi --nonrotational on --discard on
VBoxManage storageattach tiny --storagectl 'SATA Controller' --port 13 --device 0 --type dvddrive --medium /isos/tiny.iso
VBoxManage modifyvm tiny --nic1 nat
VBoxManage modifyvm tiny --natpf1 packercomm,tcp,127.0.0.1,2222,,22
VBoxManage startvm tiny --type gui
VBoxManage controlvm tiny keyboardputscancode 2d ad 1c 9c
VBoxManage showvminfo tiny --machinereadable
VBoxManage storageattach tiny --storagectl 'SATA Controller' --port 13 --device 0 --type dvddrive --medium none
VBoxManage modifyvm tiny --natpf1 delete packercomm
VBoxManage export tiny --output /out/tiny.ova --manifest --vsys 0 --description 'tiny box'
VBoxManage unregistervm tiny --delete";
    assert_eq!(
        build_sequence(&c, Path::new("/isos/tiny.iso"), 2222),
        expected
    );
}

#[test]
fn other_controllers() {
    assert_eq!(
        StorageBus::Scsi.storagectl("v", 0).to_string(),
        "VBoxManage storagectl v --name 'SCSI Controller' --add scsi --controller LSILogic"
    );
    assert_eq!(
        StorageBus::Pcie.storagectl("v", 2).to_string(),
        "VBoxManage storagectl v --name 'NVMe Controller' --add pcie --controller NVMe --portcount 2"
    );
    assert_eq!(
        IsoAttachment::guest_additions(StorageBus::Ide)
            .attach("v", Path::new("/ga.iso"))
            .to_string(),
        "VBoxManage storageattach v --storagectl 'IDE Controller' --port 1 --device 0 --type dvddrive --medium /ga.iso"
    );
    assert_eq!(
        acpi_power_button("v").to_string(),
        "VBoxManage controlvm v acpipowerbutton"
    );
    assert_eq!(poweroff("v").to_string(), "VBoxManage controlvm v poweroff");
}

#[test]
fn controllers_are_added_for_every_slot_that_uses_them() {
    let base = |extra: &str| {
        config(&format!(
            r#"{{"builders": [{{"type": "virtualbox-iso", "iso_url": "x.iso", "iso_checksum": "none",
                "ssh_username": "u", "shutdown_command": "poweroff" {extra}}}]}}"#
        ))
    };
    let controllers = |extra: &str| -> Vec<String> {
        disk_spec(&base(extra))
            .create_commands("v")
            .iter()
            .map(ToString::to_string)
            .filter(|c| c.contains(" storagectl "))
            .collect()
    };
    assert_eq!(
        controllers(""),
        ["VBoxManage storagectl v --name 'IDE Controller' --add ide"]
    );
    let sata = "VBoxManage storagectl v --name 'SATA Controller' --add sata --portcount 1";
    assert!(controllers(r#", "iso_interface": "sata""#).contains(&sata.to_owned()));
    assert!(
        controllers(r#", "guest_additions_mode": "attach", "guest_additions_interface": "sata""#)
            .contains(&sata.to_owned()),
        "attached additions on SATA need the controller even when nothing else is there"
    );
    assert!(
        !controllers(r#", "guest_additions_interface": "sata""#).contains(&sata.to_owned()),
        "uploaded additions need no drive"
    );
    assert!(
        controllers(r#", "iso_interface": "virtio""#)
            .iter()
            .any(|c| c.contains("'VirtIO Controller' --add virtio")),
        "a VirtIO DVD"
    );
    assert!(
        controllers(r#", "hard_drive_interface": "sata", "sata_port_count": 8"#)
            .contains(&sata.replace("--portcount 1", "--portcount 8")),
        "the port count as given"
    );
    // Packer's slots: above the disks on SATA and VirtIO.
    assert_eq!(IsoAttachment::boot_iso(StorageBus::Sata).port, 13);
    assert_eq!(IsoAttachment::guest_additions(StorageBus::Virtio).port, 14);
    assert_eq!(IsoAttachment::cd_files(StorageBus::Sata).port, 15);
    assert_eq!(
        (
            IsoAttachment::cd_files(StorageBus::Ide).port,
            IsoAttachment::cd_files(StorageBus::Ide).device
        ),
        (1, 1)
    );
}

#[test]
fn long_boot_commands_are_split_without_splitting_a_key() {
    let actions = crate::bootcmd::parse("aaaa").expect("parses");
    let steps = boot_command_steps("v", &actions, 3);
    let lines: Vec<String> = steps
        .iter()
        .map(|s| match s {
            BootCommandStep::Run(c) => c.to_string(),
            BootCommandStep::Wait(d) => format!("# wait {d:?}"),
        })
        .collect();
    assert_eq!(
        lines,
        [
            "VBoxManage controlvm v keyboardputscancode 1e 9e",
            "VBoxManage controlvm v keyboardputscancode 1e 9e",
            "VBoxManage controlvm v keyboardputscancode 1e 9e",
            "VBoxManage controlvm v keyboardputscancode 1e 9e",
        ]
    );
}

#[test]
fn the_floppy_gets_its_own_controller_as_in_packer() {
    let lines = |commands: Vec<VBoxCommand>| -> Vec<String> {
        commands.iter().map(ToString::to_string).collect()
    };
    assert_eq!(
        lines(floppy::attach(
            "v",
            Path::new("/tmp/kiln-floppy-x/floppy.img")
        )),
        [
            "VBoxManage storagectl v --name 'Floppy Controller' --add floppy",
            "VBoxManage storageattach v --storagectl 'Floppy Controller' --port 0 --device 0 --type fdd --medium /tmp/kiln-floppy-x/floppy.img",
        ]
    );
    assert_eq!(
        lines(floppy::detach("v")),
        [
            "VBoxManage storageattach v --storagectl 'Floppy Controller' --port 0 --device 0 --type fdd --medium none",
            "VBoxManage storagectl v --name 'Floppy Controller' --remove",
        ]
    );
}

#[test]
fn bento_hardware_keys_become_packers_rows() {
    let c = config(
        r#"{"builders": [{
            "type": "virtualbox-iso", "vm_name": "b", "output_directory": "/out",
            "iso_url": "/isos/tiny.iso", "iso_checksum": "none",
            "ssh_username": "root", "shutdown_command": "poweroff",
            "hard_drive_interface": "sata", "disk_size": 4096,
            "nested_virt": true, "rtc_time_base": "local", "audio_controller": "hda",
            "gfx_accelerate_3d": true, "gfx_efi_resolution": "1280x800",
            "usb_controller": ["xhci", "ehci"],
            "disk_additional_size": [1024, "2048"]
        }]}"#,
    );
    let vm: Vec<String> = vm_spec(&c)
        .create_commands()
        .iter()
        .map(ToString::to_string)
        .skip_while(|l| !l.contains("--firmware"))
        .skip(1)
        .collect();
    assert_eq!(
        vm,
        [
            "VBoxManage modifyvm b --audiocontroller hda",
            "VBoxManage modifyvm b --rtcuseutc off",
            "VBoxManage modifyvm b --nested-hw-virt on",
            "VBoxManage modifyvm b --accelerate3d on",
            "VBoxManage setextradata b VBoxInternal2/EfiGraphicsResolution 1280x800",
            "VBoxManage modifyvm b --usbxhci on",
            "VBoxManage modifyvm b --usbehci on",
        ]
    );
    let disks: Vec<String> = disk_spec(&c)
        .create_commands("b")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        disks,
        [
            "VBoxManage createmedium disk --filename /out/b-0.vdi --size 4096 --format VDI --variant Standard",
            "VBoxManage createmedium disk --filename /out/b-1.vdi --size 1024 --format VDI --variant Standard",
            "VBoxManage createmedium disk --filename /out/b-2.vdi --size 2048 --format VDI --variant Standard",
            "VBoxManage storagectl b --name 'IDE Controller' --add ide",
            "VBoxManage storagectl b --name 'SATA Controller' --add sata --portcount 1",
            "VBoxManage storageattach b --storagectl 'SATA Controller' --port 0 --device 0 --type hdd --medium /out/b-0.vdi --nonrotational off --discard off",
            "VBoxManage storageattach b --storagectl 'SATA Controller' --port 1 --device 0 --type hdd --medium /out/b-1.vdi --nonrotational off --discard off",
            "VBoxManage storageattach b --storagectl 'SATA Controller' --port 2 --device 0 --type hdd --medium /out/b-2.vdi --nonrotational off --discard off",
        ]
    );
    // Unset, they leave VirtualBox's defaults alone (no row at all).
    let plain = config(
        r#"{"builders": [{"type": "virtualbox-iso", "vm_name": "p", "iso_url": "x.iso",
            "iso_checksum": "none", "ssh_username": "u", "shutdown_command": "poweroff"}]}"#,
    );
    let rows = vm_spec(&plain).create_commands();
    assert!(
        rows.last()
            .is_some_and(|r| r.to_string().contains("--firmware"))
    );
}

/// On IDE, Packer attaches disk N at port N, device 0: one additional
/// disk fits at 1:0, beside the boot ISO at 0:1 (cd_files would take 1:1).
#[test]
fn one_additional_disk_fits_on_ide_as_in_packer() {
    let c = config(
        r#"{"builders": [{
            "type": "virtualbox-iso", "vm_name": "i", "output_directory": "/out",
            "iso_url": "/isos/tiny.iso", "iso_checksum": "none",
            "ssh_username": "root", "shutdown_command": "poweroff",
            "disk_size": 4096, "disk_additional_size": [1024]
        }]}"#,
    );
    let disk = disk_spec(&c);
    let mut rows: Vec<String> = disk
        .create_commands("i")
        .iter()
        .map(ToString::to_string)
        .collect();
    rows.push(
        IsoAttachment::boot_iso(disk.iso_bus)
            .attach("i", Path::new("/isos/tiny.iso"))
            .to_string(),
    );
    assert_eq!(
        rows,
        [
            "VBoxManage createmedium disk --filename /out/i-0.vdi --size 4096 --format VDI --variant Standard",
            "VBoxManage createmedium disk --filename /out/i-1.vdi --size 1024 --format VDI --variant Standard",
            "VBoxManage storagectl i --name 'IDE Controller' --add ide",
            "VBoxManage storageattach i --storagectl 'IDE Controller' --port 0 --device 0 --type hdd --medium /out/i-0.vdi --nonrotational off --discard off",
            "VBoxManage storageattach i --storagectl 'IDE Controller' --port 1 --device 0 --type hdd --medium /out/i-1.vdi --nonrotational off --discard off",
            "VBoxManage storageattach i --storagectl 'IDE Controller' --port 0 --device 1 --type dvddrive --medium /isos/tiny.iso",
        ]
    );
}

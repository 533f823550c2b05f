//! The VirtualBox driver's typed specs, from a `virtualbox-iso`
//! configuration: the driver never sees config types (DESIGN: drivers take
//! their own typed specs).

use crate::config::virtualbox::{
    ExportFormat, GuestAdditionsMode, StorageInterface, VirtualBoxIsoConfig,
};
use crate::hypervisor::virtualbox::{DiskSpec, ExportSpec, StorageBus, VmSpec};

/// The driver's bus for the configured interface.
fn storage_bus(configured: StorageInterface) -> StorageBus {
    match configured {
        StorageInterface::Ide => StorageBus::Ide,
        StorageInterface::Sata => StorageBus::Sata,
        StorageInterface::Scsi => StorageBus::Scsi,
        StorageInterface::Pcie => StorageBus::Pcie,
        StorageInterface::Virtio => StorageBus::Virtio,
    }
}

pub fn vm_spec(c: &VirtualBoxIsoConfig) -> VmSpec {
    VmSpec {
        name: c.vm_name.clone(),
        os_type: c.guest_os_type.clone(),
        cpus: c.cpus,
        memory_mib: c.memory_mib,
        usb: c.usb,
        audio: c.sound.clone(),
        chipset: c.chipset.clone(),
        firmware: c.firmware.clone(),
        nic_type: c.nic_type.clone(),
        gfx_controller: c.gfx_controller.clone(),
        gfx_vram_mib: c.gfx_vram_size,
        accelerate_3d: c.hw.gfx_accelerate_3d,
        efi_resolution: c.hw.gfx_efi_resolution.clone(),
        nested_virt: c.hw.nested_virt,
        rtc_utc: c.hw.rtc_time_base.as_deref().map(|t| t == "UTC"),
        audio_controller: c.hw.audio_controller.clone(),
        usb_controllers: c.hw.usb_controllers.clone(),
    }
}

/// `OUTPUT_DIR/VM_NAME.vdi`, as Packer names it; with additional disks
/// `VM_NAME-0.vdi`, `VM_NAME-1.vdi`, … (Packer's numbering then).
pub fn disk_spec(c: &VirtualBoxIsoConfig) -> DiskSpec {
    let numbered = |i: usize| c.output_directory.join(format!("{}-{i}.vdi", c.vm_name));
    let path = if c.hw.disk_additional_size_mib.is_empty() {
        c.output_directory.join(format!("{}.vdi", c.vm_name))
    } else {
        numbered(0)
    };
    let additional =
        c.hw.disk_additional_size_mib
            .iter()
            .enumerate()
            .map(|(i, &size)| (numbered(i + 1), size))
            .collect();
    DiskSpec {
        path,
        additional,
        size_mib: c.disk_size_mib,
        bus: storage_bus(c.hard_drive_interface),
        iso_bus: storage_bus(c.iso_interface),
        additions_bus: (c.guest_additions_mode == GuestAdditionsMode::Attach).then(|| {
            c.guest_additions_interface
                .map_or(StorageBus::Ide, storage_bus)
        }),
        cd_files: !c.media.cd.is_empty(),
        sata_port_count: c.sata_port_count,
        nvme_port_count: c.nvme_port_count,
        nonrotational: c.hard_drive_nonrotational,
        discard: c.hard_drive_discard,
    }
}

pub fn export_spec(c: &VirtualBoxIsoConfig) -> ExportSpec {
    let ext = match c.format {
        ExportFormat::Ovf => "ovf",
        ExportFormat::Ova => "ova",
    };
    ExportSpec {
        output: c
            .output_directory
            .join(format!("{}.{ext}", c.output_filename)),
        // Packer users ask for it through export_opts; not added twice.
        manifest: false,
        options: c.export_opts.clone(),
    }
}

#[cfg(test)]
#[path = "golden_tests.rs"]
mod golden_tests;

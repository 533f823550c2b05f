//! OVF 1.0 packages: the descriptor ([`write_ovf`]), and the two forms a
//! package takes on disk, a single `.ova` tar ([`export_ova`]) or a
//! directory of `.ovf` + `.vmdk` + `.mf` ([`export_ovf`]); an OVA read
//! back ([`read_ova`]), its `.mf` checked.

mod descriptor;
mod error;
mod manifest;
mod ova_reader;
mod package;
mod xml;

pub use descriptor::{VMDK_STREAM_OPTIMIZED_FORMAT, write_ovf};
pub use error::{OvaError, OvaReadError};
pub use manifest::{DigestMismatch, ExpectedDigest, ManifestLine, manifest_line, parse_manifest};
pub use ova_reader::{OvaContents, OvaMember, read_ova};
pub use package::{export_ova, export_ovf};

/// What the OVF descriptor says about the virtual machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvfSpec {
    /// The VM's name (VirtualSystem id, VirtualSystemIdentifier, file stems).
    pub vm_name: String,
    pub os_type: OsType,
    /// `vssd:VirtualSystemType`: the hardware family the importer checks,
    /// such as `virtualbox-2.2` or `vmx-07`.
    pub virtual_system_type: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub disk_controller: DiskController,
    pub nic: Nic,
    /// The disk's virtual size in bytes (what the guest sees).
    pub disk_capacity_bytes: u64,
    /// The disk's file name inside the package, such as `NAME-disk1.vmdk`.
    pub disk_file_name: String,
}

impl OvfSpec {
    /// A spec with VirtualBox's defaults for the rest: 1 CPU, 512 MiB, a
    /// SATA disk, an E1000 NIC on NAT, hardware family `virtualbox-2.2`.
    pub fn new(vm_name: &str, os_type: OsType, disk_capacity_bytes: u64) -> Self {
        Self {
            vm_name: vm_name.to_owned(),
            os_type,
            virtual_system_type: "virtualbox-2.2".to_owned(),
            cpus: 1,
            memory_mib: 512,
            disk_controller: DiskController::Sata,
            nic: Nic::default(),
            disk_capacity_bytes,
            disk_file_name: format!("{vm_name}-disk1.vmdk"),
        }
    }
}

/// The guest OS as the OVF OperatingSystemSection states it: a CIM
/// `CIM_OperatingSystem.OsType` number and a description (importers such as
/// VirtualBox read their own OS type names from the description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsType {
    pub id: u16,
    pub description: String,
}

impl OsType {
    pub fn new(id: u16, description: &str) -> Self {
        Self {
            id,
            description: description.to_owned(),
        }
    }
    /// CIM 96, "Debian 64-Bit".
    pub fn debian_64() -> Self {
        Self::new(96, "Debian_64")
    }
    /// CIM 94, "Ubuntu 64-Bit".
    pub fn ubuntu_64() -> Self {
        Self::new(94, "Ubuntu_64")
    }
    /// CIM 101, "Linux 64-Bit".
    pub fn linux_64() -> Self {
        Self::new(101, "Linux_64")
    }
    /// CIM 102, "Other 64-Bit".
    pub fn other_64() -> Self {
        Self::new(102, "Other_64")
    }
}

/// The controller the disk hangs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskController {
    Ide,
    Sata,
    Scsi,
}

impl DiskController {
    /// CIM ResourceType: 5 IDE, 20 "Other storage device" (SATA, as
    /// VirtualBox and VMware write it), 6 parallel SCSI HBA.
    pub fn resource_type(self) -> u16 {
        match self {
            Self::Ide => 5,
            Self::Sata => 20,
            Self::Scsi => 6,
        }
    }

    /// The ResourceSubType importers map to a concrete controller.
    pub fn sub_type(self) -> &'static str {
        match self {
            Self::Ide => "PIIX4",
            Self::Sata => "AHCI",
            Self::Scsi => "lsilogic",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Ide => "ideController0",
            Self::Sata => "sataController0",
            Self::Scsi => "scsiController0",
        }
    }
}

/// One network adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// The adapter model as ResourceSubType: `E1000`, `virtio`, `PCNet32`, `VmxNet3`.
    pub model: String,
    /// The logical network it connects to (NetworkSection), such as `NAT`.
    pub network: String,
}

impl Default for Nic {
    fn default() -> Self {
        Self {
            model: "E1000".to_owned(),
            network: "NAT".to_owned(),
        }
    }
}

/// The disk file a descriptor points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRef {
    /// Its name inside the package.
    pub file_name: String,
    /// Its size on disk (the `.vmdk` file), in bytes.
    pub file_size: u64,
    /// The virtual size the guest sees, in bytes.
    pub capacity: u64,
}

//! The OVF 1.0 descriptor (DMTF DSP0243 / DSP8023 envelope schema), in the
//! shape VirtualBox, VMware and virt-v2v import: one VirtualSystem with one
//! streamOptimized disk on one controller and one NIC.
//!
//! Child elements of `System` and `Item` follow the order of the CIM
//! schemas (alphabetical), which schema validation enforces.

use super::xml::XmlWriter;
use super::{DiskRef, OvfSpec};

const OVF_NS: &str = "http://schemas.dmtf.org/ovf/envelope/1";
const RASD_NS: &str =
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData";
const VSSD_NS: &str =
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData";

/// `ovf:format` of a streamOptimized VMDK, the only disk format every
/// OVF importer accepts.
pub const VMDK_STREAM_OPTIMIZED_FORMAT: &str =
    "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";

const FILE_ID: &str = "file1";
const DISK_ID: &str = "vmdisk1";

// InstanceIDs of the hardware items; the disk's Parent points at the controller's.
const CPU_ID: &str = "1";
const MEMORY_ID: &str = "2";
const CONTROLLER_ID: &str = "3";
const DISK_ITEM_ID: &str = "4";
const NIC_ID: &str = "5";

/// The descriptor for `spec` with its disk in `disk`, as a UTF-8 document.
pub fn write_ovf(spec: &OvfSpec, disk: &DiskRef) -> String {
    let mut w = XmlWriter::new();
    w.start(
        "Envelope",
        &[
            ("ovf:version", "1.0"),
            ("xml:lang", "en-US"),
            ("xmlns", OVF_NS),
            ("xmlns:ovf", OVF_NS),
            ("xmlns:rasd", RASD_NS),
            ("xmlns:vssd", VSSD_NS),
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
        ],
    );

    w.start("References", &[]);
    w.empty(
        "File",
        &[
            ("ovf:href", &disk.file_name),
            ("ovf:id", FILE_ID),
            ("ovf:size", &disk.file_size.to_string()),
        ],
    );
    w.end();

    w.start("DiskSection", &[]);
    w.text("Info", &[], "List of the virtual disks used in the package");
    w.empty(
        "Disk",
        &[
            ("ovf:capacity", &disk.capacity.to_string()),
            ("ovf:capacityAllocationUnits", "byte"),
            ("ovf:diskId", DISK_ID),
            ("ovf:fileRef", FILE_ID),
            ("ovf:format", VMDK_STREAM_OPTIMIZED_FORMAT),
        ],
    );
    w.end();

    w.start("NetworkSection", &[]);
    w.text("Info", &[], "Logical networks used in the package");
    w.start("Network", &[("ovf:name", &spec.nic.network)]);
    w.text(
        "Description",
        &[],
        "Logical network used by this appliance.",
    );
    w.end();
    w.end();

    w.start("VirtualSystem", &[("ovf:id", &spec.vm_name)]);
    w.text("Info", &[], "A virtual machine");
    w.text("Name", &[], &spec.vm_name);

    w.start(
        "OperatingSystemSection",
        &[("ovf:id", &spec.os_type.id.to_string())],
    );
    w.text("Info", &[], "The kind of installed guest operating system");
    w.text("Description", &[], &spec.os_type.description);
    w.end();

    write_hardware(&mut w, spec);

    w.end(); // VirtualSystem
    w.finish()
}

fn write_hardware(w: &mut XmlWriter, spec: &OvfSpec) {
    w.start("VirtualHardwareSection", &[]);
    w.text(
        "Info",
        &[],
        "Virtual hardware requirements for a virtual machine",
    );

    w.start("System", &[]);
    w.text("vssd:ElementName", &[], "Virtual Hardware Family");
    w.text("vssd:InstanceID", &[], "0");
    w.text("vssd:VirtualSystemIdentifier", &[], &spec.vm_name);
    w.text("vssd:VirtualSystemType", &[], &spec.virtual_system_type);
    w.end();

    let cpus = spec.cpus.to_string();
    w.start("Item", &[]);
    w.text("rasd:Caption", &[], &format!("{cpus} virtual CPU"));
    w.text("rasd:Description", &[], "Number of virtual CPUs");
    w.text("rasd:ElementName", &[], &format!("{cpus} virtual CPU(s)"));
    w.text("rasd:InstanceID", &[], CPU_ID);
    w.text("rasd:ResourceType", &[], "3");
    w.text("rasd:VirtualQuantity", &[], &cpus);
    w.end();

    let memory = spec.memory_mib.to_string();
    w.start("Item", &[]);
    w.text("rasd:AllocationUnits", &[], "byte * 2^20");
    w.text("rasd:Caption", &[], &format!("{memory} MB of memory"));
    w.text("rasd:Description", &[], "Memory Size");
    w.text("rasd:ElementName", &[], &format!("{memory} MB of memory"));
    w.text("rasd:InstanceID", &[], MEMORY_ID);
    w.text("rasd:ResourceType", &[], "4");
    w.text("rasd:VirtualQuantity", &[], &memory);
    w.end();

    let controller = spec.disk_controller;
    w.start("Item", &[]);
    w.text("rasd:Address", &[], "0");
    w.text("rasd:Caption", &[], controller.label());
    w.text("rasd:Description", &[], "Disk controller");
    w.text("rasd:ElementName", &[], controller.label());
    w.text("rasd:InstanceID", &[], CONTROLLER_ID);
    w.text("rasd:ResourceSubType", &[], controller.sub_type());
    w.text(
        "rasd:ResourceType",
        &[],
        &controller.resource_type().to_string(),
    );
    w.end();

    w.start("Item", &[]);
    w.text("rasd:AddressOnParent", &[], "0");
    w.text("rasd:Caption", &[], "disk1");
    w.text("rasd:Description", &[], "Disk Image");
    w.text("rasd:ElementName", &[], "disk1");
    w.text("rasd:HostResource", &[], &format!("ovf:/disk/{DISK_ID}"));
    w.text("rasd:InstanceID", &[], DISK_ITEM_ID);
    w.text("rasd:Parent", &[], CONTROLLER_ID);
    w.text("rasd:ResourceType", &[], "17");
    w.end();

    w.start("Item", &[]);
    w.text("rasd:AutomaticAllocation", &[], "true");
    w.text("rasd:Caption", &[], "Ethernet adapter");
    w.text("rasd:Connection", &[], &spec.nic.network);
    w.text("rasd:ElementName", &[], "Ethernet adapter");
    w.text("rasd:InstanceID", &[], NIC_ID);
    w.text("rasd:ResourceSubType", &[], &spec.nic.model);
    w.text("rasd:ResourceType", &[], "10");
    w.end();

    w.end(); // VirtualHardwareSection
}

#[cfg(test)]
mod tests {
    use super::super::{DiskController, Nic, OsType};
    use super::*;

    fn spec() -> OvfSpec {
        let mut s = OvfSpec::new("web & db", OsType::debian_64(), 64 << 20);
        s.cpus = 2;
        s.memory_mib = 1024;
        s.disk_controller = DiskController::Ide;
        s.nic = Nic {
            model: "virtio".into(),
            network: "NAT".into(),
        };
        s
    }

    fn disk() -> DiskRef {
        DiskRef {
            file_name: "web & db-disk1.vmdk".into(),
            file_size: 12345,
            capacity: 64 << 20,
        }
    }

    #[test]
    fn descriptor_names_the_disk_hardware_and_os() {
        let xml = write_ovf(&spec(), &disk());
        for needle in [
            "<File ovf:href=\"web &amp; db-disk1.vmdk\" ovf:id=\"file1\" ovf:size=\"12345\"/>",
            "ovf:capacity=\"67108864\"",
            "ovf:fileRef=\"file1\"",
            "ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"",
            "<VirtualSystem ovf:id=\"web &amp; db\">",
            "<OperatingSystemSection ovf:id=\"96\">",
            "<Description>Debian_64</Description>",
            "<vssd:VirtualSystemType>virtualbox-2.2</vssd:VirtualSystemType>",
            "<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>",
            "<rasd:VirtualQuantity>1024</rasd:VirtualQuantity>",
            "<rasd:ResourceType>5</rasd:ResourceType>",
            "<rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>",
            "<rasd:Parent>3</rasd:Parent>",
            "<rasd:Connection>NAT</rasd:Connection>",
            "<rasd:ResourceSubType>virtio</rasd:ResourceSubType>",
        ] {
            assert!(xml.contains(needle), "missing {needle} in\n{xml}");
        }
    }

    #[test]
    fn controller_resource_types() {
        assert_eq!(DiskController::Ide.resource_type(), 5);
        assert_eq!(DiskController::Sata.resource_type(), 20);
        assert_eq!(DiskController::Scsi.resource_type(), 6);
    }
}

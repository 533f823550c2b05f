//! `export`: a plausible OVF 1.0 (descriptor, stream-optimized VMDK per
//! disk, optional SHA256 manifest), as files or one OVA (ustar, the
//! descriptor first as the OVF spec asks). kiln's own OVF writer is tested
//! on its own; this only has to look like what VirtualBox writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::machine::{self, Fail, Registry};

pub fn export(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let Some(name) = rest.first() else {
        return Err(Fail::syntax("Missing VM name"));
    };
    let (mut output, mut manifest, mut description) = (None, false, String::new());
    let mut opts = machine::Opts::new(&rest[1..]);
    while let Some(opt) = opts.next_opt()? {
        match opt.as_str() {
            "--output" | "-o" => output = Some(machine::absolute(&opts.value(&opt)?)),
            "--manifest" => manifest = true,
            "--ovf09" | "--ovf10" | "--ovf20" | "--opc10" | "--iso" => {}
            "--options" | "--vsys" | "--product" | "--producturl" | "--vendor" | "--vendorurl"
            | "--version" | "--vmname" | "--eula" | "--eulafile" => {
                opts.value(&opt)?;
            }
            "--description" => description = opts.value(&opt)?,
            _ => return Err(Fail::unknown_option(&opt)),
        }
    }
    let Some(output) = output else {
        return Err(Fail::syntax("Missing --output argument"));
    };
    let ova = match output.extension().and_then(|e| e.to_str()) {
        Some("ova") => true,
        Some("ovf") => false,
        _ => {
            return Err(Fail::new(&[
                "Appliance file must have .ovf or .ova extension",
            ]));
        }
    };
    let reg = Registry::load(home)?;
    let vm = &reg.vms[reg.find(name)?];
    let dir = output
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("."));
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();

    // Disks, converted next to the output (in a scratch folder for an OVA).
    let work = if ova {
        dir.join(format!(".{stem}.export"))
    } else {
        dir.clone()
    };
    std::fs::create_dir_all(&work).map_err(|e| Fail::io("create the export folder", &e))?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut disks_xml = String::new();
    for (n, a) in vm
        .attachments
        .iter()
        .filter(|a| a.kind == "hdd" && a.medium.is_some())
        .enumerate()
    {
        let src = a.medium.as_deref().unwrap_or(Path::new(""));
        let file_name = format!("{stem}-disk{:03}.vmdk", n + 1);
        let dst = work.join(&file_name);
        let out = std::process::Command::new("qemu-img")
            .args(["convert", "-O", "vmdk", "-o", "subformat=streamOptimized"])
            .arg(src)
            .arg(&dst)
            .output()
            .map_err(|e| Fail::io("run qemu-img", &e))?;
        if !out.status.success() {
            return Err(Fail::new(&[
                "Appliance write failed",
                String::from_utf8_lossy(&out.stderr).trim(),
            ]));
        }
        let capacity = reg
            .media
            .iter()
            .find(|m| Some(&m.path) == a.medium.as_ref())
            .map_or(0, |m| m.size_mib);
        disks_xml.push_str(&format!(
            "    <Disk ovf:capacity=\"{capacity}\" ovf:capacityAllocationUnits=\"byte * 2^20\" ovf:diskId=\"vmdisk{}\" ovf:fileRef=\"file{}\" ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>\n",
            n + 1,
            n + 1
        ));
        files.push((file_name, dst));
    }
    let refs: String = files
        .iter()
        .enumerate()
        .map(|(n, (f, p))| {
            let size = std::fs::metadata(p).map_or(0, |m| m.len());
            format!(
                "    <File ovf:id=\"file{}\" ovf:href=\"{f}\" ovf:size=\"{size}\"/>\n",
                n + 1
            )
        })
        .collect();
    let ovf_name = format!("{stem}.ovf");
    let descriptor = format!(
        r#"<?xml version="1.0"?>
<Envelope ovf:version="1.0" xml:lang="en-US" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:vbox="http://www.virtualbox.org/ovf/machine">
  <References>
{refs}  </References>
  <DiskSection>
    <Info>List of the virtual disks used in the package</Info>
{disks_xml}  </DiskSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <AnnotationSection><Info>A human-readable annotation</Info><Annotation>{description}</Annotation></AnnotationSection>
    <OperatingSystemSection ovf:id="1"><Info>The kind of installed guest operating system</Info><vbox:OSType ovf:required="false">{ostype}</vbox:OSType></OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements for a virtual machine</Info>
      <Item><rasd:ElementName xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">{cpus} virtual CPU</rasd:ElementName></Item>
      <Item><rasd:ElementName xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">{memory} MB of memory</rasd:ElementName></Item>
    </VirtualHardwareSection>
    <vbox:Machine ovf:required="false" version="1.19-linux" uuid="{{{uuid}}}" name="{name}" OSType="{ostype}">
      <ovf:Info>Complete VirtualBox machine configuration in VirtualBox format</ovf:Info>
      <Hardware>
        <Network>
          <Adapter slot="0" enabled="true" MACAddress="{mac}" type="{nictype}">
{nat}          </Adapter>
        </Network>
      </Hardware>
    </vbox:Machine>
  </VirtualSystem>
</Envelope>
"#,
        uuid = vm.uuid,
        mac = vm.macaddress1,
        nictype = vm.nictype1,
        nat = nat_xml(&vm.natpf1),
        name = vm.name,
        ostype = vm.ostype,
        cpus = vm.cpus,
        memory = vm.memory,
    );
    let ovf_path = work.join(&ovf_name);
    std::fs::write(&ovf_path, &descriptor).map_err(|e| Fail::io("write the descriptor", &e))?;
    files.insert(0, (ovf_name, ovf_path));
    if manifest {
        let mut mf = String::new();
        for (f, p) in &files {
            let bytes = std::fs::read(p).map_err(|e| Fail::io("read an exported file", &e))?;
            let hex: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            mf.push_str(&format!("SHA256({f})= {hex}\n"));
        }
        let mf_path = work.join(format!("{stem}.mf"));
        std::fs::write(&mf_path, mf).map_err(|e| Fail::io("write the manifest", &e))?;
        files.insert(1, (format!("{stem}.mf"), mf_path));
    }
    if ova {
        write_tar(&output, &files).map_err(|e| Fail::io("write the OVA", &e))?;
        let _ = std::fs::remove_dir_all(&work);
    }
    eprintln!("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%");
    println!("Successfully exported 1 machine(s).");
    Ok(())
}

/// The NAT section of adapter 1 with its port forwards, as VirtualBox
/// saves them (`--natpf1 NAME,tcp,HOSTIP,HOSTPORT,GUESTIP,GUESTPORT`), so a
/// forward left on the VM travels with the export as it does there.
fn nat_xml(rules: &[String]) -> String {
    let mut out = String::from("            <NAT>\n");
    for rule in rules {
        let f: Vec<&str> = rule.split(',').collect();
        if let [name, proto, host_ip, host_port, guest_ip, guest_port] = f.as_slice() {
            let proto = if *proto == "udp" { 0 } else { 1 };
            out.push_str(&format!(
                "              <Forwarding name=\"{name}\" proto=\"{proto}\" hostip=\"{host_ip}\" hostport=\"{host_port}\" guestip=\"{guest_ip}\" guestport=\"{guest_port}\"/>\n"
            ));
        }
    }
    out.push_str("            </NAT>\n");
    out
}

/// A ustar archive of `files` (names under 100 bytes), in order.
fn write_tar(out: &Path, files: &[(String, PathBuf)]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    for (name, path) in files {
        let data = std::fs::read(path)?;
        let mut h = [0u8; 512];
        h[..name.len().min(99)].copy_from_slice(&name.as_bytes()[..name.len().min(99)]);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[148..156].copy_from_slice(b"        ");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        w.write_all(&h)?;
        w.write_all(&data)?;
        let pad = (512 - data.len() % 512) % 512;
        w.write_all(&vec![0u8; pad])?;
    }
    w.write_all(&[0u8; 1024])?;
    w.flush()
}

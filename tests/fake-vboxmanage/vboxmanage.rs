//! A simulated `VBoxManage` for kiln's tests: VirtualBox cannot be
//! installed on the test machines, so this program keeps a VM registry in
//! `$FAKE_VBOX_HOME`, answers the commands kiln uses with the output and
//! errors the real one gives, and runs VMs as detached QEMU (TCG) processes.
//!
//! Every invocation is appended to `$FAKE_VBOX_HOME/calls.log` (argv as one
//! JSON array per line) before it is carried out. Invocations are not
//! locked against each other: a build calls VBoxManage one at a time.
//!
//! It shares no code with kiln's driver on purpose: a bug copied into both
//! would pass every test.

mod export;
mod machine;
mod medium;
mod snapshot;
mod vm;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use machine::{Attachment, Controller, Fail, Medium, Registry, Vm};

const VERSION: &str = "7.0.20r163906";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Some(home) = std::env::var_os("FAKE_VBOX_HOME").map(PathBuf::from) else {
        eprintln!(
            "VBoxManage: error: FAKE_VBOX_HOME is not set (this is kiln's simulated VBoxManage)"
        );
        return ExitCode::FAILURE;
    };
    if let Err(e) = log_call(&home, &args) {
        eprintln!("VBoxManage: error: cannot write calls.log: {e}");
        return ExitCode::FAILURE;
    }
    match run(&home, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(fail) => {
            fail.print();
            ExitCode::FAILURE
        }
    }
}

fn log_call(home: &Path, args: &[String]) -> std::io::Result<()> {
    std::fs::create_dir_all(home)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("calls.log"))?;
    let line = serde_json::to_string(args).map_err(std::io::Error::other)?;
    writeln!(f, "{line}")
}

fn run(home: &Path, args: &[String]) -> Result<(), Fail> {
    // Global options VBoxManage accepts before the command.
    let args: Vec<String> = args
        .iter()
        .skip_while(|a| matches!(a.as_str(), "-q" | "--nologo"))
        .cloned()
        .collect();
    let Some((cmd, rest)) = args.split_first() else {
        return Err(Fail::syntax("No command specified"));
    };
    let rest = machine::split_equals(rest);
    match cmd.as_str() {
        "--version" | "-v" | "-version" | "--V" => {
            println!("{VERSION}");
            Ok(())
        }
        "list" => list(home, &rest),
        "createvm" => createvm(home, &rest),
        "showvminfo" => showvminfo(home, &rest),
        "modifyvm" => modifyvm(home, &rest),
        "setextradata" => setextradata(home, &rest),
        "getextradata" => getextradata(home, &rest),
        "createmedium" | "createhd" | "createvdi" => createmedium(home, &rest),
        "storagectl" => storagectl(home, &rest),
        "storageattach" => storageattach(home, &rest),
        "clonemedium" | "clonehd" | "clonevdi" => medium::clonemedium(home, &rest),
        "closemedium" => medium::closemedium(home, &rest),
        "snapshot" => snapshot::snapshot(home, &rest),
        "startvm" => vm::startvm(home, &rest),
        "controlvm" => vm::controlvm(home, &rest),
        "export" => export::export(home, &rest),
        "unregistervm" => unregistervm(home, &rest),
        other => Err(Fail::syntax(&format!("Invalid command '{other}'"))),
    }
}

fn list(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let reg = Registry::load(home)?;
    match rest.first().map(String::as_str) {
        Some("vms") => {
            for vm in &reg.vms {
                println!("\"{}\" {{{}}}", vm.name, vm.uuid);
            }
        }
        Some("runningvms") => {
            for vm in reg.vms.iter().filter(|v| vm::is_running(v)) {
                println!("\"{}\" {{{}}}", vm.name, vm.uuid);
            }
        }
        Some("hdds") => {
            for m in &reg.media {
                println!(
                    "UUID:           {}\nFormat:         VDI\nLocation:       {}\nCapacity:       {} MBytes\n",
                    m.uuid,
                    m.path.display(),
                    m.size_mib
                );
            }
        }
        Some("systemproperties") => {
            // A few of the real lines, in the real layout. The guest
            // additions ISO is reported only when the simulated install has
            // one (`$FAKE_VBOX_HOME/additions/VBoxGuestAdditions.iso`), as
            // VirtualBox leaves the value empty when its ISO is missing.
            let additions = home.join("additions/VBoxGuestAdditions.iso");
            let additions = if additions.is_file() {
                additions.display().to_string()
            } else {
                String::new()
            };
            let lines = [
                ("API version:", "7_0".to_owned()),
                ("Minimum guest RAM size:", "4 Megabytes".to_owned()),
                ("Maximum guest RAM size:", "2097152 Megabytes".to_owned()),
                ("Maximum guest CPU count:", "64".to_owned()),
                (
                    "Default machine folder:",
                    home.join("VirtualBox VMs").display().to_string(),
                ),
                ("Default hard disk format:", "VDI".to_owned()),
                ("Default Guest Additions ISO:", additions),
                ("Default frontend:", String::new()),
            ];
            for (key, value) in lines {
                println!("{key:<33}{value}");
            }
        }
        Some(other) => return Err(Fail::syntax(&format!("Unknown subcommand '{other}'"))),
        None => return Err(Fail::syntax("Missing subcommand for \"list\"")),
    }
    Ok(())
}

fn createvm(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let mut name = None;
    let mut ostype = "Other".to_owned();
    let mut register = false;
    let mut basefolder = home.join("VirtualBox VMs");
    let mut uuid = uuid::Uuid::new_v4().to_string();
    let mut opts = machine::Opts::new(rest);
    while let Some(opt) = opts.next_opt()? {
        match opt.as_str() {
            "--name" => name = Some(opts.value(&opt)?),
            "--ostype" => ostype = opts.value(&opt)?,
            "--register" => register = true,
            "--basefolder" => basefolder = machine::absolute(&opts.value(&opt)?),
            "--uuid" => uuid = opts.value(&opt)?,
            "--groups" | "--default" | "--platform-architecture" => {
                opts.value(&opt)?;
            }
            _ => return Err(Fail::unknown_option(&opt)),
        }
    }
    let Some(name) = name else {
        return Err(Fail::syntax("Parameter --name is required"));
    };
    if machine::os_type_description(&ostype).is_none() {
        return Err(Fail::new(&[&format!(
            "Guest OS type '{ostype}' is invalid"
        )]));
    }
    let dir = basefolder.join(&name);
    let settings = dir.join(format!("{name}.vbox"));
    let mut reg = Registry::load(home)?;
    if settings.exists() || reg.vms.iter().any(|v| v.name == name) {
        return Err(Fail::new(&[
            &format!(
                "Machine settings file '{}' already exists",
                settings.display()
            ),
            "Details: code VBOX_E_FILE_ERROR (0x80bb0004), component MachineWrap, interface IMachine",
        ]));
    }
    std::fs::create_dir_all(dir.join("Logs")).map_err(|e| Fail::io("create the VM folder", &e))?;
    std::fs::write(
        &settings,
        format!("<?xml version=\"1.0\"?>\n<VirtualBox><Machine uuid=\"{{{uuid}}}\" name=\"{name}\" OSType=\"{ostype}\"/></VirtualBox>\n"),
    )
    .map_err(|e| Fail::io("write the settings file", &e))?;
    if register {
        reg.vms.push(Vm::new(&name, &uuid, &ostype, &dir));
        reg.save(home)?;
        println!("Virtual machine '{name}' is created and registered.");
    } else {
        println!("Virtual machine '{name}' is created.");
    }
    println!("UUID: {uuid}\nSettings file: '{}'", settings.display());
    Ok(())
}

fn showvminfo(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let Some(name) = rest.first() else {
        return Err(Fail::syntax("Missing VM name"));
    };
    let machine_readable = rest[1..].iter().any(|a| a == "--machinereadable");
    if let Some(bad) = rest[1..]
        .iter()
        .find(|a| !matches!(a.as_str(), "--machinereadable" | "--details"))
    {
        return Err(Fail::unknown_option(bad));
    }
    let mut reg = Registry::load(home)?;
    let i = reg.find(name)?;
    vm::refresh_state(&mut reg.vms[i]);
    vm::refresh_pause(&mut reg.vms[i]);
    reg.save(home)?;
    let vm = &reg.vms[i];
    if machine_readable {
        print!("{}", machine::machinereadable(vm, &reg.media));
    } else {
        for line in machine::machinereadable(vm, &reg.media).lines() {
            println!("{}", line.replacen('=', ": ", 1).replace('"', ""));
        }
    }
    Ok(())
}

fn modifyvm(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let Some(name) = rest.first() else {
        return Err(Fail::syntax("Missing VM name"));
    };
    let mut reg = Registry::load(home)?;
    let i = reg.find(name)?;
    let vm = &mut reg.vms[i];
    if vm::is_running(vm) {
        return Err(Fail::locked(&vm.name));
    }
    let mut opts = machine::Opts::new(&rest[1..]);
    while let Some(opt) = opts.next_opt()? {
        machine::modify(vm, &opt, &mut opts)?;
    }
    reg.save(home)
}

/// `setextradata VM KEY [VALUE]`: no value deletes the key, as in VirtualBox.
fn setextradata(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let (Some(name), Some(key)) = (rest.first(), rest.get(1)) else {
        return Err(Fail::syntax("Not enough parameters"));
    };
    let mut reg = Registry::load(home)?;
    let i = reg.find(name)?;
    match rest.get(2) {
        Some(value) => reg.vms[i].extradata.insert(key.clone(), value.clone()),
        None => reg.vms[i].extradata.remove(key),
    };
    reg.save(home)
}

/// `getextradata VM KEY`: `Value: V`, or `No value set!`.
fn getextradata(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let (Some(name), Some(key)) = (rest.first(), rest.get(1)) else {
        return Err(Fail::syntax("Not enough parameters"));
    };
    let reg = Registry::load(home)?;
    let i = reg.find(name)?;
    match reg.vms[i].extradata.get(key) {
        Some(v) => println!("Value: {v}"),
        None => println!("No value set!"),
    }
    Ok(())
}

fn createmedium(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let mut rest = rest.to_vec();
    if matches!(
        rest.first().map(String::as_str),
        Some("disk" | "dvd" | "floppy")
    ) {
        rest.remove(0);
    }
    let (mut filename, mut size_mib, mut format) = (None, None, "VDI".to_owned());
    let mut opts = machine::Opts::new(&rest);
    while let Some(opt) = opts.next_opt()? {
        match opt.as_str() {
            "--filename" => filename = Some(machine::absolute(&opts.value(&opt)?)),
            "--size" => size_mib = Some(opts.number(&opt)?),
            "--sizebyte" => size_mib = Some(opts.number(&opt)?.div_ceil(1024 * 1024)),
            "--format" => format = opts.value(&opt)?.to_uppercase(),
            "--variant" => {
                let v = opts.value(&opt)?;
                for part in v.split(',') {
                    if !matches!(
                        part.trim(),
                        "Standard" | "Fixed" | "Split2G" | "Stream" | "ESX" | "Formatted"
                    ) {
                        return Err(Fail::new(&[&format!("Invalid medium variant '{v}'")]));
                    }
                }
            }
            _ => return Err(Fail::unknown_option(&opt)),
        }
    }
    let Some(path) = filename else {
        return Err(Fail::syntax("Parameter --filename is required"));
    };
    let Some(size_mib) = size_mib else {
        return Err(Fail::syntax("Parameter --size is required"));
    };
    if !matches!(format.as_str(), "VDI" | "VMDK" | "VHD") {
        return Err(Fail::new(&[&format!("Invalid medium format '{format}'")]));
    }
    if path.exists() {
        return Err(Fail::new(&[
            "Failed to create medium",
            &format!(
                "Could not create the medium storage unit '{}'.",
                path.display()
            ),
            &format!(
                "VD: cannot create image '{}' (VERR_ALREADY_EXISTS)",
                path.display()
            ),
        ]));
    }
    // The contents are qcow2 whatever the name says: qemu runs the VM, and
    // kiln only ever hands the file back to VBoxManage.
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg(format!("{size_mib}M"))
        .output()
        .map_err(|e| Fail::io("run qemu-img", &e))?;
    if !out.status.success() {
        return Err(Fail::new(&[
            "Failed to create medium",
            &format!(
                "Could not create the medium storage unit '{}'.",
                path.display()
            ),
            String::from_utf8_lossy(&out.stderr).trim(),
        ]));
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut reg = Registry::load(home)?;
    reg.media.push(Medium {
        uuid: uuid.clone(),
        path,
        size_mib,
        qcow2: true,
        parent: None,
    });
    reg.save(home)?;
    eprintln!("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%");
    println!("Medium created. UUID: {uuid}");
    Ok(())
}

fn storagectl(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let Some(name) = rest.first() else {
        return Err(Fail::syntax("Missing VM name"));
    };
    let mut reg = Registry::load(home)?;
    let i = reg.find(name)?;
    let vm = &mut reg.vms[i];
    if vm::is_running(vm) {
        return Err(Fail::locked(&vm.name));
    }
    let (mut ctl, mut bus, mut chip, mut ports, mut remove) = (None, None, None, None, false);
    let mut opts = machine::Opts::new(&rest[1..]);
    while let Some(opt) = opts.next_opt()? {
        match opt.as_str() {
            "--name" => ctl = Some(opts.value(&opt)?),
            "--add" => bus = Some(opts.value(&opt)?.to_lowercase()),
            "--controller" => chip = Some(opts.value(&opt)?),
            "--portcount" | "--sataportcount" => ports = Some(opts.number(&opt)? as u32),
            "--remove" => remove = true,
            "--bootable" | "--hostiocache" => {
                opts.value(&opt)?;
            }
            _ => return Err(Fail::unknown_option(&opt)),
        }
    }
    let Some(ctl) = ctl else {
        return Err(Fail::syntax("Storage controller name not specified"));
    };
    if remove {
        let Some(pos) = vm.controllers.iter().position(|c| c.name == ctl) else {
            return Err(Fail::no_controller(&ctl));
        };
        vm.controllers.remove(pos);
        vm.attachments.retain(|a| a.controller != ctl);
        return reg.save(home);
    }
    let Some(bus) = bus else {
        return Err(Fail::syntax("Storage controller bus not specified (--add)"));
    };
    let controller = Controller::new(&ctl, &bus, chip.as_deref(), ports)?;
    if vm.controllers.iter().any(|c| c.name == ctl) {
        return Err(Fail::new(&[&format!(
            "Storage controller named '{ctl}' already exists"
        )]));
    }
    vm.controllers.push(controller);
    reg.save(home)
}

fn storageattach(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let Some(name) = rest.first() else {
        return Err(Fail::syntax("Missing VM name"));
    };
    let (mut ctl, mut port, mut device, mut kind, mut medium) = (None, 0, 0, None, None);
    let (mut nonrotational, mut discard) = (false, false);
    let mut opts = machine::Opts::new(&rest[1..]);
    while let Some(opt) = opts.next_opt()? {
        match opt.as_str() {
            "--storagectl" => ctl = Some(opts.value(&opt)?),
            "--port" => port = opts.number(&opt)? as u32,
            "--device" => device = opts.number(&opt)? as u32,
            "--type" => kind = Some(opts.value(&opt)?),
            "--medium" => medium = Some(opts.value(&opt)?),
            "--nonrotational" => nonrotational = opts.on_off(&opt)?,
            "--discard" => discard = opts.on_off(&opt)?,
            "--hotpluggable" | "--mtype" | "--comment" | "--setuuid" | "--forceunmount" => {
                opts.value(&opt)?;
            }
            _ => return Err(Fail::unknown_option(&opt)),
        }
    }
    let Some(ctl) = ctl else {
        return Err(Fail::syntax("Storage controller name not specified"));
    };
    let Some(medium) = medium else {
        return Err(Fail::syntax("Medium not specified (--medium)"));
    };
    let mut reg = Registry::load(home)?;
    let i = reg.find(name)?;
    let running = vm::is_running(&reg.vms[i]);
    let vm = &mut reg.vms[i];
    let Some(controller) = vm.controllers.iter_mut().find(|c| c.name == ctl) else {
        return Err(Fail::no_controller(&ctl));
    };
    // Like VBoxManage: a port beyond the count but within the bus's maximum
    // grows the count (Packer's DVD slots at SATA ports 13-15 rely on it).
    if controller.bus != "ide"
        && port >= controller.port_count
        && port < controller.max_ports()
        && medium != "none"
    {
        controller.port_count = port + 1;
    }
    let (max_port, max_device) = controller.limits();
    if port >= max_port || device >= max_device {
        // VirtualBox's own words.
        return Err(Fail::new(&[
            &format!(
                "The port and/or device parameter are out of range: port={port} (must be in range [0, {}]), device={device} (must be in range [0, {}])",
                max_port - 1,
                max_device - 1
            ),
            "Details: code NS_ERROR_INVALID_ARG (0x80070057), component StorageControllerWrap, interface IStorageController, callee nsISupports",
        ]));
    }
    let existing = vm
        .attachments
        .iter()
        .position(|a| a.controller == ctl && a.port == port && a.device == device);
    if medium == "none" {
        if let Some(pos) = existing {
            if running && vm.attachments[pos].kind == "hdd" {
                return Err(Fail::locked(&vm.name));
            }
            vm.attachments.remove(pos);
        }
        return reg.save(home);
    }
    let kind = match (kind, existing) {
        (Some(k), _) => k,
        (None, Some(pos)) => vm.attachments[pos].kind.clone(),
        (None, None) => return Err(Fail::syntax("Argument --type must be specified")),
    };
    if !matches!(kind.as_str(), "hdd" | "dvddrive" | "fdd") {
        return Err(Fail::new(&[&format!("Invalid --type argument '{kind}'")]));
    }
    // A floppy drive goes only on a floppy controller, and nothing else does.
    let on_floppy_bus = vm
        .controllers
        .iter()
        .any(|c| c.name == ctl && c.bus == "floppy");
    if on_floppy_bus != (kind == "fdd") {
        return Err(Fail::new(&[
            &format!(
                "Could not attach a {kind} to the controller '{ctl}': it takes {}",
                if on_floppy_bus {
                    "floppy drives only"
                } else {
                    "no floppy drive"
                }
            ),
            "Details: code VBOX_E_OBJECT_IN_USE (0x80bb000c), component StorageControllerWrap, interface IStorageController",
        ]));
    }
    if running && kind == "hdd" {
        return Err(Fail::locked(&vm.name));
    }
    let path = if medium == "emptydrive" && kind == "dvddrive" {
        None
    } else {
        let path = machine::absolute(&medium);
        if !path.is_file() {
            return Err(Fail::new(&[&format!(
                "Could not find file for the medium '{}' (VERR_FILE_NOT_FOUND)",
                path.display()
            )]));
        }
        Some(path)
    };
    let attachment = Attachment {
        controller: ctl,
        port,
        device,
        kind,
        medium: path,
        nonrotational,
        discard,
    };
    let registered = attachment.medium.clone();
    match existing {
        Some(pos) => vm.attachments[pos] = attachment,
        None => vm.attachments.push(attachment),
    }
    if let Some(p) = registered {
        reg.ensure_medium(&p);
    }
    reg.save(home)
}

fn unregistervm(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let Some(name) = rest.first() else {
        return Err(Fail::syntax("Missing VM name"));
    };
    let mut delete = false;
    for a in &rest[1..] {
        match a.as_str() {
            "--delete" => delete = true,
            "--delete-all" => delete = true,
            other => return Err(Fail::unknown_option(other)),
        }
    }
    let mut reg = Registry::load(home)?;
    let i = reg.find(name)?;
    if vm::is_running(&reg.vms[i]) {
        return Err(Fail::new(&[&format!(
            "Cannot unregister the machine '{}' while it is locked",
            reg.vms[i].name
        )]));
    }
    let vm = reg.vms.remove(i);
    if delete {
        // Like VirtualBox: the hard disks go with the VM, DVD images stay.
        // With snapshots, each disk is a chain: the differencing image
        // attached and the parents it grows from.
        let mut doomed: Vec<std::path::PathBuf> = vm
            .attachments
            .iter()
            .filter(|a| a.kind == "hdd")
            .filter_map(|a| a.medium.clone())
            .collect();
        doomed.extend(
            vm.snapshots
                .iter()
                .flat_map(|s| s.disks.iter().map(|d| d.parent.clone())),
        );
        for p in &doomed {
            let _ = std::fs::remove_file(p);
            reg.media.retain(|m| &m.path != p);
        }
        let _ = std::fs::remove_dir_all(&vm.dir);
        eprintln!("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%");
    }
    reg.save(home)
}

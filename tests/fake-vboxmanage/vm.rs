//! Running a VM: `startvm` boots it as a detached `qemu-system-x86_64`
//! under TCG (qemu's own `-daemonize`: a new session, outliving this
//! invocation, pid in the VM folder); `controlvm` talks QMP to it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::machine::{self, Fail, Registry, Vm};

/// Pause between key events, so the guest's BIOS keyboard buffer (15 keys)
/// keeps up as it would with a person typing fast.
const KEY_EVENT_GAP: Duration = Duration::from_millis(5);
/// How long `poweroff` waits for qemu to quit before SIGKILL.
const QUIT_GRACE: Duration = Duration::from_secs(10);

fn qemu_binary() -> String {
    std::env::var("FAKE_VBOX_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into())
}

/// The QMP socket: in the VM's folder, unless that path is too long for a
/// Unix socket address.
fn qmp_socket(vm: &Vm) -> PathBuf {
    let p = vm.dir.join("qmp.sock");
    if p.as_os_str().len() < 100 {
        p
    } else {
        std::env::temp_dir().join(format!("fake-vbox-{}.qmp", &vm.uuid[..8]))
    }
}

/// True while the qemu recorded for `vm` lives (not a zombie, and really
/// that VM's qemu, not a reused pid).
pub fn is_running(vm: &Vm) -> bool {
    vm.pid.is_some_and(|pid| alive(pid, vm))
}

fn alive(pid: u32, vm: &Vm) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let sock = qemu_opt(&qmp_socket(vm));
    !zombie && String::from_utf8_lossy(&cmdline).contains(&sock)
}

/// Notices a VM whose qemu has exited: `poweroff` from then on.
pub fn refresh_state(vm: &mut Vm) {
    if vm.pid.is_some() && !is_running(vm) {
        vm.pid = None;
        vm.state_change_time = machine::timestamp_now();
    }
}

/// Asks a running VM's qemu whether the guest is stopped. A disk write
/// that failed for lack of space stops it (qemu's `werror=enospc`
/// default), which is what VirtualBox does too: it suspends the VM and
/// logs the runtime error `DrvVD_DISKFULL` in VBox.log, once.
pub fn refresh_pause(vm: &mut Vm) {
    if !is_running(vm) {
        vm.paused = false;
        return;
    }
    let Ok(mut qmp) = Qmp::connect(vm) else {
        return;
    };
    let Ok(status) = qmp.execute("query-status", &json!({})) else {
        return;
    };
    let running = status.get("running").and_then(Value::as_bool) == Some(true);
    let was_paused = vm.paused;
    vm.paused = !running;
    if running || was_paused {
        return;
    }
    vm.state_change_time = machine::timestamp_now();
    if status.get("status").and_then(Value::as_str) != Some("io-error") {
        return;
    }
    let blocks = qmp.execute("query-block", &json!({})).unwrap_or_default();
    let full = blocks
        .as_array()
        .into_iter()
        .flatten()
        .position(|b| b.get("io-status").and_then(Value::as_str) == Some("nospace"));
    let lines = match full {
        Some(n) => format!(
            "VD#{n}: Host disk full\n\
             Console: VM runtime error: fatal=false, errorID=DrvVD_DISKFULL \
             message=\"Host system reported disk full. VM execution is suspended. \
             You can resume after freeing some space\"\n"
        ),
        None => "Console: VM runtime error: fatal=false, errorID=BLKCACHE_IOERR \
                 message=\"The I/O cache encountered an error while updating data in medium. \
                 VM execution is suspended\"\n"
            .to_owned(),
    };
    let log = vm.dir.join("Logs/VBox.log");
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&log) {
        let _ = f.write_all(lines.as_bytes());
    }
}

/// A path inside a qemu option value: commas doubled.
fn qemu_opt(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

fn nic_model(nictype: &str) -> &'static str {
    match nictype {
        "82543GC" => "e1000-82544gc",
        "82545EM" => "e1000-82545em",
        "Am79C970A" | "Am79C973" | "Am79C960" => "pcnet",
        "virtio" => "virtio-net-pci",
        _ => "e1000",
    }
}

const OVMF_CODE: &[&str] = &[
    "/usr/share/OVMF/OVMF_CODE_4M.fd",
    "/usr/share/OVMF/OVMF_CODE.fd",
];
const OVMF_VARS: &[&str] = &[
    "/usr/share/OVMF/OVMF_VARS_4M.fd",
    "/usr/share/OVMF/OVMF_VARS.fd",
];

/// The qemu command line for a VM's settings.
fn qemu_args(vm: &Vm, media: &[machine::Medium]) -> Result<Vec<String>, Fail> {
    let dir = vm.dir.to_string_lossy();
    let mut a: Vec<String> = [
        "-name",
        &vm.name,
        "-accel",
        "tcg",
        "-machine",
        if vm.chipset == "ich9" { "q35" } else { "pc" },
        "-m",
        &vm.memory.to_string(),
        "-smp",
        &vm.cpus.to_string(),
        "-nodefaults",
        "-display",
        "none",
        "-vga",
        if vm.graphicscontroller == "none" {
            "none"
        } else {
            "std"
        },
        "-daemonize",
        "-pidfile",
        &format!("{dir}/qemu.pid"),
        "-qmp",
        &format!("unix:{},server=on,wait=off", qemu_opt(&qmp_socket(vm))),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if vm.firmware != "bios" {
        let code = OVMF_CODE.iter().find(|p| Path::new(p).is_file());
        let vars = OVMF_VARS.iter().find(|p| Path::new(p).is_file());
        let (Some(code), Some(vars)) = (code, vars) else {
            return Err(Fail::new(&[
                "EFI firmware not found (the simulator uses OVMF: apt-get install ovmf)",
            ]));
        };
        let nvram = vm.dir.join(format!("{}.nvram", vm.name));
        if !nvram.exists() {
            std::fs::copy(vars, &nvram).map_err(|e| Fail::io("create the NVRAM file", &e))?;
        }
        a.extend([
            "-drive".into(),
            format!("if=pflash,format=raw,readonly=on,file={code}"),
            "-drive".into(),
            format!("if=pflash,format=raw,file={}", qemu_opt(&nvram)),
        ]);
    }
    match (&vm.uart1, &vm.uartmode1_file) {
        (Some(_), Some(file)) => a.extend(["-serial".into(), format!("file:{}", qemu_opt(file))]),
        (Some(_), None) => a.extend(["-serial".into(), "null".into()]),
        (None, _) => {}
    }
    match vm.nic1.as_str() {
        "nat" => {
            let mut netdev = "user,id=net0".to_owned();
            for rule in &vm.natpf1 {
                let p: Vec<&str> = rule.split(',').collect();
                netdev.push_str(&format!(
                    ",hostfwd={}:{}:{}-{}:{}",
                    p[1], p[2], p[3], p[4], p[5]
                ));
            }
            let mac = vm
                .macaddress1
                .as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(":");
            a.extend([
                "-netdev".into(),
                netdev,
                "-device".into(),
                format!("{},netdev=net0,mac={mac}", nic_model(&vm.nictype1)),
            ]);
        }
        "none" | "null" => {}
        other => {
            return Err(Fail::new(&[&format!(
                "NIC 1 attachment '{other}' is not supported by kiln's simulated VirtualBox"
            )]));
        }
    }
    if vm.usb {
        a.push("-usb".into());
    }
    storage_args(vm, media, &mut a)?;
    Ok(a)
}

fn storage_args(vm: &Vm, media: &[machine::Medium], a: &mut Vec<String>) -> Result<(), Fail> {
    let boot_pos = |what: &str| vm.boot.iter().position(|b| b == what);
    let mut booted = 0;
    for (k, c) in vm.controllers.iter().enumerate() {
        match c.bus.as_str() {
            "sata" => a.extend(["-device".into(), format!("ahci,id=sata{k}")]),
            "scsi" | "sas" => a.extend(["-device".into(), format!("lsi53c895a,id=scsi{k}")]),
            "virtio" => a.extend(["-device".into(), format!("virtio-scsi-pci,id=vscsi{k}")]),
            _ => {}
        }
        for (n, at) in vm
            .attachments
            .iter()
            .enumerate()
            .filter(|(_, at)| at.controller == c.name)
        {
            let hdd = at.kind == "hdd";
            if at.kind == "fdd" {
                // VirtualBox's I82078 as QEMU's ISA floppy controller, the
                // drive at its port (0 = A:); QEMU adds the controller on q35.
                if let Some(path) = &at.medium {
                    a.extend([
                        "-drive".into(),
                        format!(
                            "if=floppy,index={},file={},format=raw",
                            at.port,
                            qemu_opt(path)
                        ),
                    ]);
                }
                continue;
            }
            let mut dev = match (c.bus.as_str(), hdd) {
                ("ide", true) => format!("ide-hd,bus=ide.{},unit={}", at.port, at.device),
                ("ide", false) => format!("ide-cd,bus=ide.{},unit={}", at.port, at.device),
                ("sata", true) => format!("ide-hd,bus=sata{k}.{}", at.port),
                ("sata", false) => format!("ide-cd,bus=sata{k}.{}", at.port),
                ("scsi" | "sas", true) => format!("scsi-hd,bus=scsi{k}.0,scsi-id={}", at.port),
                ("scsi" | "sas", false) => format!("scsi-cd,bus=scsi{k}.0,scsi-id={}", at.port),
                ("virtio", true) => format!("scsi-hd,bus=vscsi{k}.0,lun={}", at.port),
                ("virtio", false) => format!("scsi-cd,bus=vscsi{k}.0,lun={}", at.port),
                ("pcie", true) => format!("nvme,serial=VB{k}N{}", at.port),
                (bus, _) => {
                    return Err(Fail::new(&[&format!(
                        "a {} on a {bus} controller is not supported by kiln's simulated VirtualBox",
                        at.kind
                    )]));
                }
            };
            if let Some(path) = &at.medium {
                let qcow2 = media.iter().any(|m| &m.path == path && m.qcow2);
                let mut drive = format!("if=none,id=d{k}x{n},file={}", qemu_opt(path));
                if qcow2 {
                    drive.push_str(",format=qcow2");
                } else if !hdd {
                    drive.push_str(",format=raw,readonly=on,media=cdrom");
                }
                if at.discard {
                    drive.push_str(",discard=unmap");
                }
                a.extend(["-drive".into(), drive]);
                dev.push_str(&format!(",drive=d{k}x{n}"));
            }
            if hdd && at.nonrotational && c.bus != "pcie" {
                dev.push_str(",rotation_rate=1");
            }
            if let Some(pos) = boot_pos(if hdd { "disk" } else { "dvd" }) {
                dev.push_str(&format!(",bootindex={}", pos * 10 + booted));
                booted += 1;
            }
            a.extend(["-device".into(), dev]);
        }
    }
    Ok(())
}

pub fn startvm(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let Some(name) = rest.first() else {
        return Err(Fail::syntax("Missing VM name"));
    };
    let mut opts = machine::Opts::new(&rest[1..]);
    while let Some(opt) = opts.next_opt()? {
        match opt.as_str() {
            "--type" => {
                // There is no screen here: every type runs without one.
                let t = opts.value(&opt)?;
                if !matches!(t.as_str(), "gui" | "headless" | "sdl" | "separate") {
                    return Err(Fail::new(&[&format!("Invalid session type '{t}'")]));
                }
            }
            "-E" | "--putenv" => {
                opts.value(&opt)?;
            }
            _ => return Err(Fail::unknown_option(&opt)),
        }
    }
    let mut reg = Registry::load(home)?;
    let i = reg.find(name)?;
    refresh_state(&mut reg.vms[i]);
    if is_running(&reg.vms[i]) {
        return Err(Fail::new(&[&format!(
            "The machine '{}' is already locked by a session (or being locked or unlocked)",
            reg.vms[i].name
        )]));
    }
    let args = qemu_args(&reg.vms[i], &reg.media)?;
    let vm = &mut reg.vms[i];
    let pidfile = vm.dir.join("qemu.pid");
    let _ = std::fs::remove_file(&pidfile);
    let _ = std::fs::remove_file(qmp_socket(vm));
    println!("Waiting for VM \"{}\" to power on...", vm.name);
    let out = std::process::Command::new(qemu_binary())
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Fail::io("start qemu", &e))?;
    let log = vm.dir.join("Logs/VBox.log");
    let _ = std::fs::write(
        &log,
        format!(
            "qemu-system-x86_64 {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    let pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let Some(pid) = pid.filter(|_| out.status.success()) else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut lines = vec![format!(
            "The virtual machine '{}' has terminated unexpectedly during startup with exit code 1 (0x1).  More details may be available in '{}'",
            vm.name,
            log.display()
        )];
        lines.extend(stderr.lines().map(str::to_owned));
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        return Err(Fail::new(&refs));
    };
    vm.pid = Some(pid);
    vm.state_change_time = machine::timestamp_now();
    println!("VM \"{}\" has been successfully started.", vm.name);
    reg.save(home)
}

/// A QMP session: greeting read, capabilities negotiated.
pub(crate) struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    pub(crate) fn connect(vm: &Vm) -> Result<Self, Fail> {
        let stream =
            UnixStream::connect(qmp_socket(vm)).map_err(|e| Fail::io("reach the VM", &e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| Fail::io("reach the VM", &e))?;
        let writer = stream
            .try_clone()
            .map_err(|e| Fail::io("reach the VM", &e))?;
        let mut q = Self {
            reader: BufReader::new(stream),
            writer,
        };
        q.read()?; // greeting
        q.execute("qmp_capabilities", &json!({}))?;
        Ok(q)
    }

    fn read(&mut self) -> Result<Value, Fail> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| Fail::io("read from the VM", &e))?;
        if n == 0 {
            return Err(Fail::new(&["The VM closed its monitor"]));
        }
        serde_json::from_str(&line).map_err(|e| Fail::new(&[&format!("bad QMP reply: {e}")]))
    }

    pub(crate) fn execute(&mut self, command: &str, arguments: &Value) -> Result<Value, Fail> {
        let msg = json!({"execute": command, "arguments": arguments});
        writeln!(self.writer, "{msg}").map_err(|e| Fail::io("write to the VM", &e))?;
        loop {
            let v = self.read()?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(Fail::new(&[&format!("{command}: {e}")]));
            }
            // An event: skip.
        }
    }
}

/// Set-1 scancodes → QEMU key numbers: the low 7 bits, with 0x80 for the
/// 0xE0-prefixed keys; bit 7 of the code says release.
fn scancode_events(codes: &[u8]) -> Vec<(u8, bool)> {
    let mut out = Vec::new();
    let mut extended = false;
    for &b in codes {
        if b == 0xe0 {
            extended = true;
            continue;
        }
        let number = (b & 0x7f) | if extended { 0x80 } else { 0 };
        out.push((number, b & 0x80 == 0));
        extended = false;
    }
    out
}

pub fn controlvm(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let (Some(name), Some(sub)) = (rest.first(), rest.get(1)) else {
        return Err(Fail::syntax("Not enough parameters"));
    };
    let args = &rest[2..];
    let mut reg = Registry::load(home)?;
    let i = reg.find(name)?;
    refresh_state(&mut reg.vms[i]);
    if !is_running(&reg.vms[i]) {
        reg.save(home)?;
        return Err(Fail::not_running(&reg.vms[i].name));
    }
    let vm = &mut reg.vms[i];
    match sub.as_str() {
        "keyboardputscancode" => {
            if args.is_empty() {
                return Err(Fail::syntax("Missing argument to 'keyboardputscancode'"));
            }
            let mut codes = Vec::new();
            for a in args {
                let ok = a.len() == 2 && a.chars().all(|c| c.is_ascii_hexdigit());
                let byte = u8::from_str_radix(a, 16).ok().filter(|_| ok);
                let Some(byte) = byte else {
                    return Err(Fail::new(&[&format!("Error: '{a}' is not a hex byte!")]));
                };
                codes.push(byte);
            }
            let mut qmp = Qmp::connect(vm)?;
            for (number, down) in scancode_events(&codes) {
                qmp.execute(
                    "input-send-event",
                    &json!({"events": [{"type": "key", "data": {
                        "down": down, "key": {"type": "number", "data": number}}}]}),
                )?;
                std::thread::sleep(KEY_EVENT_GAP);
            }
            Ok(())
        }
        "acpipowerbutton" => {
            Qmp::connect(vm)?.execute("system_powerdown", &json!({}))?;
            Ok(())
        }
        "pause" | "resume" | "reset" => {
            let command = match sub.as_str() {
                "pause" => "stop",
                "resume" => "cont",
                _ => "system_reset",
            };
            Qmp::connect(vm)?.execute(command, &json!({}))?;
            Ok(())
        }
        "poweroff" => {
            let pid = vm.pid.unwrap_or_default();
            // `quit` may close the socket before answering.
            if let Ok(mut q) = Qmp::connect(vm) {
                let _ = q.execute("quit", &json!({}));
            }
            let deadline = Instant::now() + QUIT_GRACE;
            while is_running(vm) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if is_running(vm)
                && let Some(p) = rustix::process::Pid::from_raw(pid as i32)
            {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                std::thread::sleep(Duration::from_millis(200));
            }
            eprintln!("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%");
            refresh_state(vm);
            reg.save(home)
        }
        other => Err(Fail::syntax(&format!("Invalid parameter '{other}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::scancode_events;

    #[test]
    fn set1_codes_become_qemu_key_numbers() {
        // Shift down, 'a', shift up; then right ctrl (E0 1D) and up arrow (E0 48).
        let events = scancode_events(&[0x2a, 0x1e, 0x9e, 0xaa, 0xe0, 0x1d, 0xe0, 0x9d, 0xe0, 0x48]);
        assert_eq!(
            events,
            [
                (0x2a, true),
                (0x1e, true),
                (0x1e, false),
                (0x2a, false),
                (0x9d, true),
                (0x9d, false),
                (0xc8, true),
            ]
        );
    }
}

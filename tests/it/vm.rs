//! Real builds under QEMU (TCG) with the tiny installer ISO built from
//! Debian packages. One VM at a time: the machine has two cores.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::support::kiln_bin;

/// VM tests take turns.
pub(crate) fn vm_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tiny installer ISO and its sha256, built once (and cached across runs).
pub(crate) fn tiny_iso() -> &'static (PathBuf, String) {
    static ISO: OnceLock<(PathBuf, String)> = OnceLock::new();
    ISO.get_or_init(|| {
        let out = Command::new(repo().join("scripts/build-tiny-installer"))
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/build-tiny-installer runs");
        assert!(out.status.success(), "building the tiny installer failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let path = PathBuf::from(lines.next().expect("ISO path"));
        let sum = lines.next().expect("sha256").trim().to_owned();
        (path, sum)
    })
}

struct Workdir {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
}

/// A copy of examples/tiny in a temporary directory, its own ISO cache.
fn tiny_example() -> Workdir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = repo().join("examples/tiny");
    for sub in ["", "files", "scripts", "hcl"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        for entry in std::fs::read_dir(src.join(sub)).expect("read example") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_file() {
                std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name()))
                    .expect("copy");
            }
        }
    }
    Workdir {
        dir,
        cache: tempfile::tempdir().expect("tempdir"),
    }
}

fn kiln(work: &Workdir, args: &[&str]) -> Command {
    let (iso, sum) = tiny_iso();
    let mut cmd = Command::new(kiln_bin());
    cmd.current_dir(work.dir.path())
        .env("KILN_CACHE_DIR", work.cache.path())
        .env("NO_COLOR", "1")
        .args(args)
        .arg(format!("-var=iso_url={}", iso.display()))
        .arg(format!("-var=iso_checksum=sha256:{sum}"))
        .arg("-var=accelerator=tcg");
    cmd
}

/// `kiln build [flags] TEMPLATE` in `dir`, with its own ISO cache.
pub(crate) fn build_in(dir: &Path, flags: &[&str], template: &Path) -> Command {
    let mut cmd = Command::new(kiln_bin());
    cmd.current_dir(dir)
        .env("KILN_CACHE_DIR", dir.join("cache"))
        .arg("build")
        .args(flags)
        .arg(template);
    cmd
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// PIDs of QEMU processes whose command line mentions `needle`.
pub(crate) fn qemu_processes_with(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("qemu-system") && cmdline.contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// The installed image, built once by the first test that needs it and
/// reused (as `disk_image`) by the tests of later steps.
fn built_image() -> &'static PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let work = tiny_example();
        let out = kiln(&work, &["build"])
            .arg("tiny.json")
            .output()
            .expect("kiln runs");
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        let out_dir = work.dir.path().join("output-tiny");
        let image = out_dir.join("tiny.qcow2");
        assert!(image.is_file(), "{t}");
        // The post-processor chains ran: a libvirt box, its checksum, a manifest.
        assert!(out_dir.join("tiny-libvirt.box").is_file(), "{t}");
        let sums = Command::new("sha256sum")
            .args(["-c", "tiny-qemu.sha256"])
            .current_dir(&out_dir)
            .output()
            .expect("sha256sum runs");
        assert!(
            sums.status.success(),
            "{}",
            String::from_utf8_lossy(&sums.stdout)
        );
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out_dir.join("manifest.json")).expect("manifest"),
        )
        .expect("manifest is JSON");
        assert_eq!(manifest["builds"][0]["builder_type"], "qemu", "{manifest}");
        // Keep the image past this work directory.
        let keep =
            std::env::temp_dir().join(format!("kiln-test-image-{}.qcow2", std::process::id()));
        std::fs::copy(&image, &keep).expect("keep image");
        keep
    })
}

/// A provisioner line that finds the CD holding `hello.txt` among the
/// guest's CD drives and prints `hello.txt` and `meta-data`.
pub(crate) const READ_CD: &str = "mkdir -p /tmp/cd; for d in /dev/sr*; do \
    mount -t iso9660 -o ro $d /tmp/cd 2>/dev/null || continue; \
    if [ -f /tmp/cd/hello.txt ]; then cat /tmp/cd/hello.txt /tmp/cd/meta-data; umount /tmp/cd; exit 0; fi; \
    umount /tmp/cd; done; echo no CD holds hello.txt; ls -l /dev/sr* /sys/block; exit 1";

/// A template that boots an existing image (no ISO) and runs `inline`.
fn disk_image_template(
    dir: &Path,
    image: &Path,
    vm_name: &str,
    inline: &[&str],
    extra: &str,
) -> PathBuf {
    let inline = serde_json::to_string(inline).expect("json");
    let sum = sha256_of(image);
    let text = format!(
        r#"{{
  "builders": [{{
    "type": "qemu", "vm_name": "{vm_name}", "disk_image": true, "use_backing_file": true,
    "iso_url": "{image}", "iso_checksum": "sha256:{sum}",
    "accelerator": "tcg", "memory": 256, "disk_size": "1G", "headless": true,
    "ssh_username": "root", "ssh_password": "kiln-tiny", "ssh_timeout": "3m",
    "shutdown_command": "poweroff" {extra}
  }}],
  "provisioners": [{{"type": "shell", "inline": {inline}}}]
}}"#,
        image = image.display()
    );
    let path = dir.join("image.json");
    std::fs::write(&path, text).expect("write template");
    path
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    let data = std::fs::read(path).expect("read");
    sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn tiny_installer_build_produces_an_image_that_boots_alone() {
    let _vm = vm_lock();
    let started = Instant::now();
    let image = built_image();
    eprintln!("tiny build: {:?}", started.elapsed());

    // Boot the produced image by itself (no ISO attached) and look for the
    // provisioners' marker files over SSH.
    let dir = tempfile::tempdir().expect("tempdir");
    let template = disk_image_template(
        dir.path(),
        image,
        "verify-image",
        &["cat /root/kiln-marker /root/kiln-greeting /etc/motd"],
        "",
    );
    let out = build_in(dir.path(), &[], &template)
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("provisioned by kiln"), "{t}");
    assert!(t.contains("hello from qemu"), "{t}");
    assert!(t.contains("Built by kiln from examples/tiny."), "{t}");
    let started_line = t.lines().find(|l| l.contains("QEMU started")).unwrap_or("");
    assert!(
        !started_line.contains("media=cdrom"),
        "the image must boot without the ISO: {started_line}"
    );
    assert!(qemu_processes_with("verify-image").is_empty());
}

/// examples/tiny/hcl (Bento's layout: variables, sources and build in
/// separate files, a *.pkrvars.hcl) builds what tiny.json builds: the
/// image, the box, its checksum and the manifest, and the image boots by
/// itself with the provisioners' work on it.
#[test]
fn tiny_hcl2_directory_builds_the_same_image_as_the_json_template() {
    let _vm = vm_lock();
    let work = tiny_example();
    let started = Instant::now();
    let out = kiln(&work, &["build", "-var-file=hcl/tiny.pkrvars.hcl"])
        .arg("hcl")
        .output()
        .expect("kiln runs");
    eprintln!("tiny HCL2 build: {:?}", started.elapsed());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        !t.contains("kiln-tiny"),
        "the sensitive password leaked: {t}"
    );
    let out_dir = work.dir.path().join("output-tiny");
    let image = out_dir.join("tiny.qcow2");
    assert!(image.is_file(), "{t}");
    assert!(out_dir.join("tiny-libvirt.box").is_file(), "{t}");
    let sums = Command::new("sha256sum")
        .args(["-c", "tiny-qemu.sha256"])
        .current_dir(&out_dir)
        .output()
        .expect("sha256sum runs");
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).expect("manifest"))
            .expect("manifest is JSON");
    assert_eq!(manifest["builds"][0]["builder_type"], "qemu", "{manifest}");

    let dir = tempfile::tempdir().expect("tempdir");
    let template = disk_image_template(
        dir.path(),
        &image,
        "verify-hcl-image",
        &["cat /root/kiln-marker /root/kiln-greeting /etc/motd"],
        "",
    );
    let out = build_in(dir.path(), &[], &template)
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("provisioned by kiln"), "{t}");
    assert!(t.contains("hello from qemu"), "{t}");
    assert!(t.contains("Built by kiln from examples/tiny."), "{t}");
    assert!(qemu_processes_with("verify-hcl-image").is_empty());
}

#[test]
fn existing_output_directory_needs_force() {
    let work = tiny_example();
    let out_dir = work.dir.path().join("output-tiny");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    std::fs::write(out_dir.join("precious"), b"keep me").expect("write");
    let out = kiln(&work, &["build"])
        .arg("tiny.json")
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("already exists") && t.contains("-force"), "{t}");
    assert!(
        out_dir.join("precious").is_file(),
        "an existing directory must be left alone"
    );
}

#[test]
fn a_guest_that_never_opens_ssh_times_out_with_its_serial_console() {
    let _vm = vm_lock();
    let work = tiny_example();
    // No boot command: the installer waits at its boot prompt forever.
    let template = std::fs::read_to_string(work.dir.path().join("tiny.json")).expect("read");
    let template = template
        .replace(r#""ssh_timeout": "5m""#, r#""ssh_timeout": "8s""#)
        .replace(
            r#""boot_command": ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg<enter>"],"#,
            "",
        );
    std::fs::write(work.dir.path().join("tiny.json"), template).expect("write");
    let out = kiln(&work, &["build"])
        .arg("tiny.json")
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("serial console"), "{t}");
    assert!(
        t.contains("boot:"),
        "the serial tail shows the prompt it is stuck at: {t}"
    );
    assert!(
        !work.dir.path().join("output-tiny").exists(),
        "cleanup removes the output directory"
    );
    assert!(
        qemu_processes_with("tiny.qcow2").is_empty(),
        "the VM is killed"
    );
}

#[test]
fn a_wrong_password_names_the_user_and_methods() {
    let _vm = vm_lock();
    let image = built_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let template = disk_image_template(
        dir.path(),
        image,
        "wrong-password",
        &["true"],
        r#", "ssh_handshake_attempts": 2"#,
    )
    .to_string_lossy()
    .into_owned();
    let text_of = std::fs::read_to_string(&template)
        .expect("read")
        .replace("kiln-tiny", "not-the-password");
    std::fs::write(&template, text_of).expect("write");
    let out = build_in(dir.path(), &[], Path::new(&template))
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("root") && t.contains("password"), "{t}");
    assert!(qemu_processes_with("wrong-password").is_empty());
}

#[test]
fn a_failing_provisioner_kills_the_vm_and_removes_the_output_unless_abort() {
    let _vm = vm_lock();
    let image = built_image();
    let modes = [
        ("-on-error=cleanup", false),
        ("-on-error=abort", true),
        ("-on-error=run-cleanup-provisioner", false),
    ];
    for (flag, kept) in modes {
        let dir = tempfile::tempdir().expect("tempdir");
        let template = disk_image_template(
            dir.path(),
            image,
            "failing-provisioner",
            &["echo about to fail", "exit 1"],
            "",
        );
        // The error-cleanup-provisioner runs over the same connection,
        // only with -on-error=run-cleanup-provisioner.
        let with_cleanup = std::fs::read_to_string(&template).expect("read").replacen(
            '{',
            r#"{"error-cleanup-provisioner": {"type": "shell", "inline": ["echo error cleanup ran"]},"#,
            1,
        );
        std::fs::write(&template, with_cleanup).expect("write");
        let out = build_in(dir.path(), &[flag], &template)
            .output()
            .expect("kiln runs");
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{t}");
        assert!(t.contains("about to fail"), "streamed output: {t}");
        assert!(t.contains("exited with status 1"), "{t}");
        assert_eq!(
            t.contains("error cleanup ran"),
            flag.ends_with("run-cleanup-provisioner"),
            "{flag}: {t}"
        );
        assert_eq!(dir.path().join("output-qemu").exists(), kept, "{flag}: {t}");
        assert!(
            qemu_processes_with("failing-provisioner").is_empty(),
            "{flag}: the VM must be killed"
        );
    }
}

/// Starts a build, waits for `marker` in its output, sends SIGINT.
pub(crate) fn interrupt_when(cmd: Command, marker: &str, name: &str) -> (Output, Duration) {
    interrupt_when_checking(cmd, marker, name, || Ok(()))
}

/// [`interrupt_when`], running `check` on the live build just before the
/// signal; its failure is reported after the build has been stopped, so a
/// failed check never leaves a VM behind.
pub(crate) fn interrupt_when_checking(
    mut cmd: Command,
    marker: &str,
    name: &str,
    check: impl FnOnce() -> Result<(), String>,
) -> (Output, Duration) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln runs");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(marker) {
            break;
        }
    }
    assert!(seen.contains(marker), "{marker} never appeared:\n{seen}");
    std::thread::sleep(Duration::from_millis(300));
    let checked = check();
    let pid = i32::try_from(child.id()).expect("pid");
    let sent = Instant::now();
    // SAFETY-free: the kill(1) command delivers the signal.
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    let out = child.wait_with_output().expect("kiln exits");
    assert!(
        qemu_processes_with(name).is_empty(),
        "no qemu may survive an interrupted build:\n{seen}"
    );
    if let Err(e) = checked {
        panic!("before the interrupt: {e}");
    }
    (out, sent.elapsed())
}

#[test]
fn ctrl_c_during_boot_and_during_provisioning_cleans_up() {
    let _vm = vm_lock();
    let image = built_image();
    for (marker, vm_name) in [
        ("Waiting for SSH", "sigint-boot"),
        ("sleeping now", "sigint-provision"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let template = disk_image_template(
            dir.path(),
            image,
            vm_name,
            &["echo sleeping now", "sleep 120"],
            "",
        );
        let cmd = build_in(dir.path(), &[], &template);
        let (out, took) = interrupt_when(cmd, marker, vm_name);
        assert_ne!(out.status.code(), Some(0), "{marker}");
        assert!(
            took < Duration::from_secs(20),
            "cleanup after Ctrl-C took {took:?}"
        );
        assert!(
            !dir.path().join("output-qemu").exists(),
            "{marker}: the output directory is removed"
        );
    }
}

#[test]
fn format_ova_exports_an_ovf_package_as_the_artifact() {
    let _vm = vm_lock();
    let image = built_image();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("seed")).expect("seed dir");
    std::fs::write(dir.path().join("seed/meta-data"), "instance-id: kiln\n").expect("seed");
    let template = disk_image_template(
        dir.path(),
        image,
        "ova-export",
        &[READ_CD],
        r#", "format": "ova",
           "cd_files": ["seed/"], "cd_content": {"hello.txt": "read from the cd_files CD"},
           "cd_label": "cidata""#,
    );
    let out = build_in(dir.path(), &[], &template)
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("read from the cd_files CD") && t.contains("instance-id: kiln"),
        "the guest reads the CD: {t}"
    );
    assert!(t.contains("label cidata"), "{t}");
    let ova = dir.path().join("output-qemu/ova-export.ova");
    assert!(ova.is_file(), "{t}");
    assert!(
        !dir.path().join("output-qemu/ova-export").exists(),
        "the working disk is replaced by the package"
    );
    let names = crate::support::ova_members(&ova);
    assert!(names.iter().any(|n| n.ends_with(".mf")), "{names:?}");
}

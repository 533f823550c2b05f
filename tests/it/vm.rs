//! Real builds under QEMU (TCG) with the tiny installer ISO built from
//! Debian packages. One VM at a time: the machine has two cores.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::support::kiln_bin;

/// VM tests take turns.
pub(crate) fn vm_lock() -> VmTurn {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    VmTurn {
        _guard: guard,
        since: std::time::Instant::now(),
    }
}

/// A test's turn at running VMs. With `KILN_TEST_VM_TIMES=FILE`, how long
/// each test held it is appended to FILE (the suite's time is mostly these
/// turns, one after another; the test's own time includes its wait).
pub(crate) struct VmTurn {
    _guard: MutexGuard<'static, ()>,
    since: std::time::Instant,
}

impl Drop for VmTurn {
    fn drop(&mut self) {
        let Some(file) = std::env::var_os("KILN_TEST_VM_TIMES") else {
            return;
        };
        let line = format!(
            "{:8.1} s {}\n",
            self.since.elapsed().as_secs_f64(),
            std::thread::current().name().unwrap_or("?")
        );
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
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

/// Edits the copied tiny.json's builder as JSON: a text replace that
/// silently matched nothing once let a test run a different build than it
/// meant (the guest installed where it was to wait at its prompt).
fn edit_tiny_builder(
    work: &Workdir,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) {
    let path = work.dir.path().join("tiny.json");
    let mut template: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    let builder = template["builders"][0]
        .as_object_mut()
        .expect("a builder object");
    edit(builder);
    std::fs::write(&path, template.to_string()).expect("write");
}

/// Sets `key` in the tiny builder, which must have had it.
fn replace_key(
    builder: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    value: serde_json::Value,
) {
    assert!(
        builder.insert(key.into(), value).is_some(),
        "tiny.json has no {key}"
    );
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

/// Points `cmd` (a build of examples/tiny as it is) at the cache this run's
/// builds of that example share: the first one installs the guest and
/// saves the install checkpoint, the others resume it. Only for tests of
/// what comes after the install; the same install key is itself a check
/// (an HCL2 or upgraded template that resumes has the same install inputs).
fn sharing_the_tiny_install(cmd: &mut Command) -> &mut Command {
    cmd.env("KILN_CACHE_DIR", tiny_install_cache())
}

fn tiny_install_cache() -> PathBuf {
    crate::support::run_dir().join("tiny-install-cache")
}

/// After a build [`sharing_the_tiny_install`]: every such build so far had
/// the same install key (one checkpoint between them), whichever ran first.
fn assert_one_tiny_install(t: &str) {
    let saved = crate::checkpoint::checkpoints_in(&tiny_install_cache());
    assert_eq!(saved.len(), 1, "{saved:?}\n{t}");
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

/// QEMU processes started in `dir` (their working directory, where kiln
/// runs them): a test's own VMs, not those of another build on the machine
/// that uses the same vm_name (a helper's, a user's, a parallel CI job's).
pub(crate) fn qemu_processes_in(dir: &Path) -> Vec<u32> {
    qemu_processes_in_with(dir, "qemu-system")
}

/// [`qemu_processes_in`] whose command line also contains `needle`.
pub(crate) fn qemu_processes_in_with(dir: &Path, needle: &str) -> Vec<u32> {
    qemu_processes_with(needle)
        .into_iter()
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

/// What examples/tiny leaves in `out_dir` (an image, a box, a checksum file
/// that checks, a manifest), and that the image boots alone with the
/// provisioners' work on it, in a build of its own named `verify_name`.
fn assert_the_tiny_example_output(t: &str, out_dir: &Path, verify_name: &str) {
    let image = out_dir.join("tiny.qcow2");
    assert!(image.is_file(), "{t}");
    assert!(out_dir.join("tiny-libvirt.box").is_file(), "{t}");
    let sums: Vec<_> = std::fs::read_dir(out_dir)
        .expect("output dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sha256"))
        .collect();
    assert_eq!(sums.len(), 1, "{sums:?}");
    let check = Command::new("sha256sum")
        .args(["-c", &sums[0]])
        .current_dir(out_dir)
        .output()
        .expect("sha256sum runs");
    assert!(check.status.success(), "{}", text(&check));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).expect("manifest"))
            .expect("manifest is JSON");
    assert_eq!(manifest["builds"][0]["builder_type"], "qemu", "{manifest}");

    boot_alone_with_the_tiny_provisioning(&image, verify_name);
}

/// Boots `image` by itself (a `disk_image` build named `verify_name`),
/// checks that examples/tiny's provisioners' files are on it, and returns
/// the build's output.
fn boot_alone_with_the_tiny_provisioning(image: &Path, verify_name: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = disk_image_template(
        dir.path(),
        image,
        verify_name,
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
    assert!(qemu_processes_in(dir.path()).is_empty());
    t
}

/// The installed image, built once by the first test that needs it and
/// reused (as `disk_image`) by the tests of later steps.
pub(crate) fn built_image() -> &'static PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let work = tiny_example();
        let out = sharing_the_tiny_install(&mut kiln(&work, &["build"]))
            .arg("tiny.json")
            .output()
            .expect("kiln runs");
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        assert_one_tiny_install(&t);
        let out_dir = work.dir.path().join("output-tiny");
        let image = out_dir.join("tiny.qcow2");
        assert!(image.is_file(), "{t}");
        // The post-processor chains ran: a libvirt box, its checksum, a manifest.
        assert!(out_dir.join("tiny-libvirt.box").is_file(), "{t}");
        // Built under TCG (-var=accelerator=tcg): the box asks libvirt for a
        // `qemu` domain, as Packer's does; a `kvm` one would not start on a
        // host without KVM. The memory is the template's.
        let vagrantfile = Command::new("tar")
            .args(["-xzOf", "tiny-libvirt.box", "Vagrantfile"])
            .current_dir(&out_dir)
            .output()
            .expect("tar runs");
        let vagrantfile = String::from_utf8_lossy(&vagrantfile.stdout);
        for line in [
            "libvirt.driver = \"qemu\"",
            "libvirt.memory = 256",
            "libvirt.cpus = 1",
        ] {
            assert!(vagrantfile.contains(line), "{line} not in:\n{vagrantfile}");
        }
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
        let keep = crate::support::run_dir().join("tiny.qcow2");
        std::fs::copy(&image, &keep).expect("keep image");
        // And its libvirt box, which tests/it/vagrant_libvirt.rs boots.
        std::fs::copy(out_dir.join("tiny-libvirt.box"), keep.with_extension("box"))
            .expect("keep box");
        keep
    })
}

/// The libvirt box of the [`built_image`] build (examples/tiny under TCG).
pub(crate) fn built_box() -> PathBuf {
    built_image().with_extension("box")
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

pub(crate) fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    let data = std::fs::read(path).expect("read");
    kiln::digest::hex(&sha2::Sha256::digest(&data))
}

#[test]
fn vm_tiny_installer_build_produces_an_image_that_boots_alone() {
    let _vm = vm_lock();
    let started = Instant::now();
    let image = built_image();
    eprintln!("tiny build: {:?}", started.elapsed());

    // Boot the produced image by itself (no ISO attached) and look for the
    // provisioners' marker files over SSH.
    let t = boot_alone_with_the_tiny_provisioning(image, "verify-image");
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
fn vm_tiny_hcl2_directory_builds_the_same_image_as_the_json_template() {
    let _vm = vm_lock();
    let work = tiny_example();
    let started = Instant::now();
    let out = sharing_the_tiny_install(&mut kiln(
        &work,
        &["build", "-var-file=hcl/tiny.pkrvars.hcl"],
    ))
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
    assert_one_tiny_install(&t);
    assert_the_tiny_example_output(&t, &work.dir.path().join("output-tiny"), "verify-hcl-image");
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
fn vm_a_guest_that_never_opens_ssh_times_out_with_its_serial_console() {
    let _vm = vm_lock();
    let work = tiny_example();
    // No boot command: the installer waits at its boot prompt forever.
    edit_tiny_builder(&work, |b| {
        assert!(b.remove("boot_command").is_some(), "{b:?}");
        replace_key(b, "ssh_timeout", "8s".into());
    });
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
        qemu_processes_in(work.dir.path()).is_empty(),
        "the VM is killed"
    );
}

#[test]
fn vm_a_wrong_password_names_the_user_and_methods() {
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
fn vm_a_failing_provisioner_kills_the_vm_and_removes_the_output_unless_abort() {
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
    // Only this build's VMs count: others on the machine may share its name.
    let dir = cmd
        .get_current_dir()
        .map_or_else(|| std::env::current_dir().expect("cwd"), Path::to_path_buf);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln runs");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
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
    // The rest of stderr (the summary) goes into the output with the rest.
    for line in lines {
        seen.push_str(&line.unwrap_or_default());
        seen.push('\n');
    }
    let mut out = child.wait_with_output().expect("kiln exits");
    out.stderr = seen.clone().into_bytes();
    assert!(
        qemu_processes_in_with(&dir, name).is_empty(),
        "no qemu may survive an interrupted build:\n{seen}"
    );
    if let Err(e) = checked {
        panic!("before the interrupt: {e}");
    }
    (out, sent.elapsed())
}

#[test]
fn vm_ctrl_c_during_boot_and_during_provisioning_cleans_up() {
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
        assert_eq!(out.status.code(), Some(1), "{marker}");
        let t = text(&out);
        assert!(
            t.contains("interrupted by SIGINT during \"") && !t.contains("interrupted: "),
            "{marker}: the summary says what was interrupted: {t}"
        );
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
fn vm_format_ova_exports_an_ovf_package_as_the_artifact() {
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
        r#", "format": "ova", "pause_before_connecting": "2s",
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
    assert!(
        t.contains("SSH answered; pausing 2s before connecting (pause_before_connecting)"),
        "{t}"
    );
    let ova = dir.path().join("output-qemu/ova-export.ova");
    assert!(ova.is_file(), "{t}");
    assert!(
        !dir.path().join("output-qemu/ova-export").exists(),
        "the working disk is replaced by the package"
    );
    let names = crate::support::ova_members(&ova);
    assert!(names.iter().any(|n| n.ends_with(".mf")), "{names:?}");
}

/// Issue #11: the tiny example rewritten the way many public templates are:
/// the boot command, the box name and the shell's execute_command live in
/// variables with their build-time fields, the output directory comes from a
/// var-file key the template never declares, a deprecated key is templated,
/// and an undeclared `{{user}}` renders empty.
#[test]
fn vm_a_template_written_packer_style_builds_unchanged() {
    let _vm = vm_lock();
    let work = tiny_example();
    let path = work.dir.path().join("tiny.json");
    let mut t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    let vars = t["variables"].as_object_mut().expect("variables");
    vars.insert(
        "boot_line".into(),
        "install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg<enter>".into(),
    );
    vars.insert(
        "box_output".into(),
        "output-{{user `build_label`}}/tiny-{{.Provider}}.box".into(),
    );
    vars.insert(
        "exec".into(),
        "chmod +x {{.Path}}; echo exec-from-variable; {{.Vars}} {{.Path}}".into(),
    );
    vars.insert("ssh_wait".into(), "5m".into());
    let b = &mut t["builders"][0];
    b["boot_command"] = serde_json::json!(["{{user `boot_line`}}"]);
    b["output_directory"] = "output-{{user `build_label`}}".into();
    b.as_object_mut().expect("builder").remove("ssh_timeout");
    b["ssh_wait_timeout"] = "{{user `ssh_wait`}}".into();
    t["provisioners"][0]["inline"] = serde_json::json!(["echo \"proxy=[{{user `http_proxy`}}]\""]);
    t["provisioners"][2]["execute_command"] = "{{user `exec`}}".into();
    t["post-processors"][0][0]["output"] = "{{user `box_output`}}".into();
    t["post-processors"][0][1]["output"] =
        "output-{{user `build_label`}}/tiny-{{.BuildName}}.{{.ChecksumType}}".into();
    t["post-processors"][1]["output"] = "output-{{user `build_label`}}/manifest.json".into();
    std::fs::write(&path, serde_json::to_string_pretty(&t).expect("json")).expect("write");
    std::fs::write(
        work.dir.path().join("ci.json"),
        r#"{"build_label": "ci-7"}"#,
    )
    .expect("write var-file");

    let out = kiln(&work, &["build", "-var-file=ci.json"])
        .arg("tiny.json")
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    // The boot command from a variable reached the installer (else no SSH).
    let out_dir = work.dir.path().join("output-ci-7");
    assert!(out_dir.join("tiny.qcow2").is_file(), "{t}");
    // `{{.Provider}}` held by a variable was filled in by the vagrant step.
    assert!(out_dir.join("tiny-libvirt.box").is_file(), "{t}");
    assert!(t.contains("proxy=[]"), "{t}");
    assert!(t.contains("warning[undeclared-user-variable]"), "{t}");
    assert!(t.contains("warning[deprecated-key]"), "{t}");
    // The execute_command from a variable ran the script with its vars.
    assert!(t.contains("exec-from-variable"), "{t}");
    assert!(t.contains("hello from qemu"), "{t}");
}

/// A provisioner line that mounts the first floppy drive and prints what
/// the floppy tests put on it.
pub(crate) const READ_FLOPPY: &str = "mkdir -p /tmp/fd; \
    mount -t vfat -o ro /dev/fd0 /tmp/fd || { echo cannot mount the floppy; ls -l /dev/fd* /sys/block; dmesg | tail -20; exit 1; }; \
    cat /tmp/fd/hello.txt; echo; cat /tmp/fd/meta-data /tmp/fd/drivers/net/setup.inf; umount /tmp/fd";

/// The path kiln says it made the floppy at.
pub(crate) fn floppy_path_in(output: &str) -> PathBuf {
    let rest = output
        .split("Made the floppy ")
        .nth(1)
        .unwrap_or_else(|| panic!("no floppy made: {output}"));
    PathBuf::from(rest.split(" (").next().expect("path"))
}

#[test]
fn vm_the_guest_reads_floppy_files_dirs_and_content_from_drive_a() {
    let _vm = vm_lock();
    let image = built_image();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("seed/drivers/net")).expect("seed dir");
    std::fs::write(dir.path().join("seed/meta-data"), "instance-id: floppy\n").expect("seed");
    std::fs::write(
        dir.path().join("seed/drivers/net/setup.inf"),
        "[floppy driver]\n",
    )
    .expect("seed");
    let template = disk_image_template(
        dir.path(),
        image,
        "floppy-read",
        &[
            READ_FLOPPY,
            "echo labelled: $(dd if=/dev/fd0 bs=1 skip=43 count=11 2>/dev/null)",
        ],
        r#", "floppy_files": ["seed/meta-*"], "floppy_dirs": ["seed/drivers"],
           "floppy_content": {"hello.txt": "read from the floppy"},
           "floppy_label": "kilnfd""#,
    );
    let out = build_in(dir.path(), &[], &template)
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("read from the floppy")
            && t.contains("instance-id: floppy")
            && t.contains("[floppy driver]"),
        "the guest reads the floppy: {t}"
    );
    assert!(
        t.contains("labelled: kilnfd"),
        "the boot sector's label: {t}"
    );
    let floppy = floppy_path_in(&t);
    assert!(
        !floppy.exists() && floppy.parent().is_some_and(|d| !d.exists()),
        "the floppy and its folder are removed: {}",
        floppy.display()
    );
}

/// A qemu build whose vagrant post-processor has an `override` for both
/// providers: the libvirt box is made with the libvirt keys alone, and
/// Vagrant adds it.
#[test]
fn vm_vagrant_override_makes_the_libvirt_box_with_its_own_settings() {
    let _vm = vm_lock();
    let image = built_image();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("libvirt.Vagrantfile"),
        "# made by the libvirt override for {{ .BuildName }}\n",
    )
    .expect("vagrantfile template");
    let template = disk_image_template(dir.path(), image, "override-box", &["true"], "");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&template).expect("template")).expect("JSON");
    json["post-processors"] = serde_json::json!([{
        "type": "vagrant",
        "output": "{{ .Provider }}.box",
        "override": {
            "libvirt": {
                "output": "boxes/libvirt-override.box",
                "compression_level": 0,
                "vagrantfile_template": "libvirt.Vagrantfile"
            },
            "virtualbox": {"output": "boxes/never.box"}
        }
    }]);
    std::fs::write(&template, json.to_string()).expect("template");
    let out = build_in(dir.path(), &[], &template)
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let boxes = dir.path().join("boxes");
    let made: Vec<String> = std::fs::read_dir(&boxes)
        .expect("boxes")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(made, ["libvirt-override.box"], "{t}");
    assert!(!dir.path().join("libvirt.box").exists(), "{t}");
    let boxfile = boxes.join("libvirt-override.box");
    let listing = Command::new("tar")
        .arg("-xzOf")
        .arg(&boxfile)
        .arg("Vagrantfile")
        .output()
        .expect("tar runs");
    let vagrantfile = String::from_utf8_lossy(&listing.stdout);
    assert!(
        vagrantfile.contains("# made by the libvirt override for qemu"),
        "{vagrantfile}"
    );
    // compression_level 0: the box is stored, not deflated (no smaller
    // than the tar inside it; the disk is a small overlay on the image).
    let packed = std::fs::metadata(&boxfile).expect("box").len();
    let mut tar = flate2::read::MultiGzDecoder::new(std::fs::File::open(&boxfile).expect("box"));
    let unpacked = std::io::copy(&mut tar, &mut std::io::sink()).expect("gunzip");
    assert!(
        packed >= unpacked && unpacked > 64 << 10,
        "{packed} bytes packed, {unpacked} unpacked"
    );
    let home = dir.path().join("vagrant-home");
    let list = crate::support::vagrant_box_add(&home, "kiln-override", &boxfile);
    assert!(list.contains("kiln-override (libvirt"), "{list}");
}

/// `unshare -m` works here (root, mount namespaces), so a test can mount a
/// private tmpfs that no one else sees and that vanishes with the process.
pub(crate) fn private_mounts_work() -> bool {
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `inner` (a kiln command) in a private mount namespace where
/// `dir/small` is a 6 MiB tmpfs, interrupting it after `bound`. Returns
/// its output and whether it finished by itself.
pub(crate) fn run_on_small_tmpfs(
    inner: &Command,
    dir: &Path,
    bound: Duration,
) -> (std::process::Output, bool) {
    let mut cmd = Command::new("unshare");
    cmd.current_dir(dir)
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=6m kiln-small small && exec "$0" "$@""#)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln runs");
    let finished = loop {
        if child.try_wait().expect("waits").is_some() {
            break true;
        }
        if started.elapsed() > bound {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    (child.wait_with_output().expect("kiln exits"), finished)
}

/// Issue #16: QEMU pauses a guest whose host disk is full (its default on
/// write errors); kiln must fail at once, naming the disk, the error and
/// the free space, rather than wait out `ssh_timeout`.
#[test]
fn vm_a_full_host_disk_fails_the_build_at_once_naming_the_disk() {
    if !private_mounts_work() {
        eprintln!("\n!!! SKIPPED: `unshare -m` does not work here (needs root)\n");
        return;
    }
    let _vm = vm_lock();
    let work = tiny_example();
    // The install writes tens of MiB; 6 MiB hold the empty qcow2 and the
    // serial log, and fill up during the install.
    edit_tiny_builder(&work, |b| {
        replace_key(b, "ssh_timeout", "30m".into());
        replace_key(b, "output_directory", "small/output-tiny".into());
    });
    std::fs::create_dir(work.dir.path().join("small")).expect("mkdir");
    let mut inner = kiln(&work, &["build"]);
    inner.arg("tiny.json");
    // Far below ssh_timeout: the install fills the disk in well under a
    // minute under TCG; an idle machine needs ~40 s for the whole install.
    let bound = Duration::from_secs(240);
    let started = Instant::now();
    let (out, finished) = run_on_small_tmpfs(&inner, work.dir.path(), bound);
    let took = started.elapsed();
    let t = text(&out);
    eprintln!("kiln finished after {took:?}");
    assert!(finished, "kiln was still waiting after {bound:?}:\n{t}");
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("the VM stopped before SSH became available"),
        "{t}"
    );
    assert!(
        t.contains("small/output-tiny/tiny.qcow2 is full: no space left on device"),
        "{t}"
    );
    assert!(
        t.contains(" free on ") && t.contains("small/output-tiny)"),
        "{t}"
    );
    assert!(t.contains("output_directory on a larger filesystem"), "{t}");
    assert!(
        qemu_processes_in(work.dir.path()).is_empty(),
        "the VM is killed"
    );
}

/// Reads QEMU's RFB greeting on `port`, answers with the same version and
/// returns it with the security types the server offers (1 = none, 2 = VNC
/// password).
pub(crate) fn rfb_handshake(port: u16) -> Result<(String, Vec<u8>), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("connect to VNC port {port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut banner = [0u8; 12];
    s.read_exact(&mut banner)
        .map_err(|e| format!("read the RFB banner: {e}"))?;
    s.write_all(&banner).map_err(|e| e.to_string())?;
    let mut count = [0u8; 1];
    s.read_exact(&mut count).map_err(|e| e.to_string())?;
    let mut types = vec![0u8; usize::from(count[0])];
    s.read_exact(&mut types).map_err(|e| e.to_string())?;
    Ok((String::from_utf8_lossy(&banner).into_owned(), types))
}

/// Issue #11: the qemu VNC keys are used: a headless build serves VNC on
/// loopback in vnc_port_min..max, says where, and with vnc_use_password
/// asks for the password it prints; qmp_enable opens the user's QMP socket.
#[test]
fn vm_a_headless_build_serves_vnc_on_loopback_with_the_password_it_prints() {
    use std::io::{BufRead, BufReader};
    let _vm = vm_lock();
    let work = tiny_example();
    // No boot command: the installer waits at its prompt while we look.
    edit_tiny_builder(&work, |b| {
        assert!(b.remove("boot_command").is_some(), "{b:?}");
        b.insert("vnc_use_password".into(), true.into());
        b.insert("vnc_port_min".into(), 5990.into());
        b.insert("vnc_port_max".into(), 6010.into());
        b.insert("qmp_enable".into(), true.into());
    });
    let mut child = kiln(&work, &["build"])
        .arg("tiny.json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln runs");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    let mut url_line = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("vnc://") {
            url_line = Some(line);
            break;
        }
        if line.contains("Waiting for SSH") {
            break;
        }
    }
    let checked = (|| -> Result<(), String> {
        let line = url_line.ok_or("no vnc:// line before waiting for SSH")?;
        let rest = line
            .split("vnc://127.0.0.1:")
            .nth(1)
            .ok_or("the VNC server is not on 127.0.0.1")?;
        let port: u16 = rest
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or("no port after vnc://127.0.0.1:")?;
        if !(5990..=6010).contains(&port) {
            return Err(format!("port {port} is outside vnc_port_min..vnc_port_max"));
        }
        let password = line
            .rsplit("with the password ")
            .next()
            .filter(|p| p.len() == 8)
            .ok_or("no 8-character password printed")?;
        if password.is_empty() {
            return Err("empty password".into());
        }
        let (banner, types) = rfb_handshake(port)?;
        if banner != "RFB 003.008\n" {
            return Err(format!("banner {banner:?}"));
        }
        if types != [2] {
            return Err(format!(
                "security types {types:?}, expected only VNC authentication (2)"
            ));
        }
        // qmp_enable: a QMP socket of the user's own beside kiln's.
        let monitor = work.dir.path().join("output-tiny/tiny.qcow2.monitor");
        let stream = std::os::unix::net::UnixStream::connect(&monitor)
            .map_err(|e| format!("connect to {}: {e}", monitor.display()))?;
        // QEMU may broadcast an event (our VNC client leaving) on the new
        // socket before its greeting; a QMP client skips those.
        let mut greeting = String::new();
        let mut reader = BufReader::new(stream);
        while !greeting.contains("\"QMP\"") {
            if !greeting.is_empty() && !greeting.contains("\"event\"") {
                return Err(format!("not a QMP greeting: {greeting}"));
            }
            greeting.clear();
            if reader.read_line(&mut greeting).map_err(|e| e.to_string())? == 0 {
                return Err("the QMP socket closed before its greeting".into());
            }
        }
        Ok(())
    })();
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("kiln exits");
    assert!(
        qemu_processes_in(work.dir.path()).is_empty(),
        "the VM is killed"
    );
    if let Err(e) = checked {
        panic!("{e}\n{seen}{}", text(&out));
    }
}

/// `kiln hcl2_upgrade tiny.json` writes an HCL2 template that builds what
/// tiny.json builds: the image (with the provisioners' work on it, and
/// `{{build_name}}` still "qemu"), the box, its checksum and the manifest.
#[test]
fn vm_upgraded_tiny_template_builds_the_same_image_as_the_json_one() {
    let _vm = vm_lock();
    let work = tiny_example();
    let up = Command::new(kiln_bin())
        .current_dir(work.dir.path())
        .args(["hcl2_upgrade", "tiny.json"])
        .output()
        .expect("kiln runs");
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let started = Instant::now();
    let out = sharing_the_tiny_install(&mut kiln(&work, &["build"]))
        .arg("tiny.json.pkr.hcl")
        .output()
        .expect("kiln runs");
    eprintln!("upgraded tiny build: {:?}", started.elapsed());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        !t.contains("kiln-tiny"),
        "the sensitive password leaked: {t}"
    );
    assert_one_tiny_install(&t);
    assert_the_tiny_example_output(
        &t,
        &work.dir.path().join("output-tiny"),
        "verify-upgraded-image",
    );
}

//! Running the kiln binary and normalising its output for snapshots.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn kiln_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln"))
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs kiln with `args` in `dir`, with a clean, predictable environment.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    run_with_env(dir, args, &[])
}

/// [`run_in`] with extra environment variables.
pub fn run_with_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    Command::new(kiln_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("KILN_CACHE_DIR")
        .env_remove("PACKER_CACHE_DIR")
        .env_remove("KILN_STRICT")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .env("NO_COLOR", "1")
        .env("KILN_TEST_SECRET", "from-the-environment")
        .output()
        .expect("kiln runs")
}

/// Exit status, stdout and stderr as one text, for snapshots.
pub fn transcript(output: &Output, dir: &Path) -> String {
    let code = output
        .status
        .code()
        .map_or("signal".to_owned(), |c| c.to_string());
    let dir_text = dir.display().to_string();
    let clean = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&dir_text, "[DIR]");
    format!(
        "exit: {code}\n--- stdout\n{}--- stderr\n{}",
        clean(&output.stdout),
        clean(&output.stderr)
    )
}

/// Adds `file` with the real Vagrant under the throwaway `home` and returns
/// `vagrant box list`.
pub fn vagrant_box_add(home: &Path, name: &str, file: &Path) -> String {
    std::fs::create_dir_all(home).expect("mkdir VAGRANT_HOME");
    let vagrant = |args: &[&std::ffi::OsStr]| {
        // Run from the throwaway home: in the repository Vagrant would find
        // the top-level Vagrantfile and leave a `.vagrant/` beside it.
        let out = Command::new("vagrant")
            .args(args)
            .current_dir(home)
            .env("VAGRANT_HOME", home)
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .output()
            .expect("vagrant runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "vagrant {args:?}: {text}");
        text
    };
    vagrant(&[
        "box".as_ref(),
        "add".as_ref(),
        "--name".as_ref(),
        name.as_ref(),
        file.as_ref(),
    ]);
    vagrant(&["box".as_ref(), "list".as_ref()])
}

/// The members of an OVA in archive order, after checking what every
/// reader expects of one: the `.ovf` descriptor first, then a `.vmdk`.
pub fn ova_members(ova: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(ova)
        .output()
        .expect("tar runs");
    assert!(out.status.success(), "tar -tf {}", ova.display());
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        names.first().is_some_and(|n| n.ends_with(".ovf")),
        "the descriptor comes first: {names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with(".vmdk")), "{names:?}");
    names
}

/// Writes `dir/t.json`: a qemu build named `name` whose ISO (`dir/fake.iso`,
/// a few bytes with their real digest) verifies but whose QEMU binary does
/// not exist, so it fails at "Starting the VM" without booting anything.
/// `extra` keys are merged into the builder.
pub fn unbootable_qemu_template(dir: &Path, name: &str, extra: serde_json::Value) {
    use sha2::Digest;
    let iso = b"a stand-in ISO: only its digest matters";
    std::fs::write(dir.join("fake.iso"), iso).expect("write iso");
    let digest: String = sha2::Sha256::digest(iso)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut builder = serde_json::json!({
        "type": "qemu",
        "name": name,
        "iso_url": "fake.iso",
        "iso_checksum": format!("sha256:{digest}"),
        "accelerator": "tcg",
        "qemu_binary": "/nonexistent/qemu-system-x86_64",
        "disk_size": "16M",
        "headless": true,
        "communicator": "none"
    });
    if let (Some(b), serde_json::Value::Object(e)) = (builder.as_object_mut(), extra) {
        b.extend(e);
    }
    let template = serde_json::json!({ "builders": [builder] });
    std::fs::write(dir.join("t.json"), template.to_string()).expect("write template");
}

/// The Python guest's installer ISO (`scripts/build-tiny-installer --python`:
/// the tiny installer's system plus Debian's Python 3.11) and its sha256,
/// built once per test run and cached in `iso-cache/` across runs.
pub fn python_guest_iso() -> &'static (PathBuf, String) {
    static ISO: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    ISO.get_or_init(|| {
        let out = Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-tiny-installer"),
        )
        .arg("--python")
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("scripts/build-tiny-installer runs");
        assert!(
            out.status.success(),
            "building the Python guest's installer failed"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let path = PathBuf::from(lines.next().expect("ISO path"));
        let sum = lines.next().expect("sha256").trim().to_owned();
        (path, sum)
    })
}

/// Packages from the project's `.venv` (made by scripts/bootstrap),
/// byte-compiled, as `NAME.tgz` for a `file` provisioner to upload: the
/// Python guest has Debian's Python but no pip and no network beyond the
/// host. `packages` are top-level names in site-packages; `dists` are
/// prefixes of the `.dist-info` directories to take along.
pub fn site_packages_bundle(name: &str, packages: &[&str], dists: &[&str]) -> PathBuf {
    let site = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.venv/lib/python3.11/site-packages"
    );
    // The staged copy (over 100 MB for Salt, byte-compiled) goes with this
    // directory when the bundle is made; only the tarball is kept.
    let staging = tempfile::tempdir().expect("tempdir");
    let pkgs = staging.path().join("site");
    std::fs::create_dir_all(&pkgs).expect("mkdir");
    let mut wanted: Vec<String> = packages.iter().map(|p| format!("{site}/{p}")).collect();
    for entry in std::fs::read_dir(site).expect("site-packages").flatten() {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        if entry_name.ends_with(".dist-info") && dists.iter().any(|d| entry_name.starts_with(d)) {
            wanted.push(format!("{site}/{entry_name}"));
        }
    }
    let ok = Command::new("cp")
        .arg("-a")
        .args(&wanted)
        .arg(&pkgs)
        .status()
        .expect("cp runs");
    assert!(ok.success(), "copying {wanted:?} (run scripts/bootstrap?)");
    let ok = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python"))
        .args(["-m", "compileall", "-q", "-j", "0"])
        .arg(&pkgs)
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("compileall runs");
    assert!(ok.success(), "byte-compiling {name}");
    let bundle = run_dir().join(format!("{name}.tgz"));
    let ok = Command::new("tar")
        .arg("-czf")
        .arg(&bundle)
        .arg("-C")
        .arg(&pkgs)
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(ok.success(), "tar {name}");
    bundle
}

/// This test process's scratch directory under Cargo's target/tmp, for
/// what outlives one test (images, bundles, a shared cache). Made on first
/// use; the directories of earlier runs whose process is gone are removed
/// then, so a run leaves at most its own behind.
pub fn run_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let gone = name
                .strip_prefix("it-run-")
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if gone {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(format!("it-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creates the run's scratch directory");
        dir
    })
}

/// The key pair the Python guest's builds log in with (`ssh_private_key_file`),
/// made once per run: with the build's temporary key every install would
/// differ, and no build could resume another's install checkpoint.
fn python_guest_key() -> &'static Path {
    static KEY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let key = run_dir().join("python-guest-key");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "kiln-test", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen runs");
        assert!(made.success(), "ssh-keygen failed");
        key
    })
}

/// `kiln build TEMPLATE` in `dir` for a [`python_guest_builder`] template,
/// with the cache every Python-guest build of this run shares
/// (`KILN_CACHE_DIR`): the first build installs the guest and saves its
/// install checkpoint; the others resume it (README "Install checkpoints"),
/// so the run installs the Python guest once, not once per test.
pub fn python_guest_build(dir: &Path, template: &Path) -> Command {
    let mut cmd = crate::vm::build_in(dir, &[], template);
    cmd.env("KILN_CACHE_DIR", run_dir().join("python-guest-cache"));
    cmd
}

/// A qemu builder (JSON object) that installs the Python guest from its ISO
/// and logs in as root with this run's key (the answer file is
/// `http_content` with `{{ .SSHPublicKey }}`, the key file's public half;
/// there is no password), then powers it off with `poweroff`. Tests add
/// their provisioners around it, and build with [`python_guest_build`].
pub fn python_guest_builder(vm_name: &str) -> serde_json::Value {
    let (iso, sum) = python_guest_iso();
    serde_json::json!({
        "type": "qemu",
        "vm_name": vm_name,
        "iso_url": iso,
        "iso_checksum": format!("sha256:{sum}"),
        "accelerator": "tcg",
        "memory": 256,
        "disk_size": "1024M",
        "format": "qcow2",
        "headless": true,
        "http_content": {
            "/install.cfg": "hostname=pyguest\nusername=root\nauthorized_key={{ .SSHPublicKey }}\nfinish=reboot\n"
        },
        "boot_wait": "5s",
        "boot_command": ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg<enter>"],
        "ssh_username": "root",
        "ssh_private_key_file": python_guest_key(),
        "ssh_timeout": "5m",
        "shutdown_command": "poweroff"
    })
}

/// Writes an executable script that this process can run at once.
///
/// `std::fs::write` would hold the file open for writing in this process for
/// a moment; a child another test thread forks in that moment inherits the
/// descriptor until its own exec, and running the script before then fails
/// with "Text file busy" (ETXTBSY, one CI run in many). So a `sh` child
/// writes it: the only writer is a process nothing else forks from, and it
/// has exited when this returns.
pub fn write_executable(path: &Path, text: &str) {
    use std::io::Write;
    let mut writer = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sh runs");
    writer
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("writes the script to sh");
    let status = writer.wait().expect("sh exits");
    assert!(
        status.success(),
        "writing {} failed: {status}",
        path.display()
    );
}

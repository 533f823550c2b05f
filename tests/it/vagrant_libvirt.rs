//! The repo's top-level Vagrantfile, run as a box user would run it: the
//! libvirt box examples/tiny makes (built under TCG, so a `qemu` domain) is
//! added, `vagrant up --provider=libvirt` boots it through libvirtd,
//! `vagrant ssh -c` runs a command in it, `vagrant destroy -f` removes it,
//! and nothing it made in libvirt is left behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const URI: &str = "qemu:///system";
/// A box name of the test's own: vagrant-libvirt names the base volume it
/// uploads after the box, so the test deletes only its own.
const BOX: &str = "kiln-test-vagrantfile";
/// The domain vagrant-libvirt makes: the project directory's name, then
/// the machine's.
const DOMAIN: &str = "project_default";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What a failed vagrant command said, for a failure message short enough
/// that CI shows it whole: its exit status (124 when `timeout` stopped it),
/// the last lines of its output (where vagrant puts its error; the
/// upload's hundred `Progress: N%` lines left out), then the ends of
/// libvirtd's log and the domain's.
fn failure(out: &Output) -> String {
    let text = text(out);
    let said = text
        .lines()
        .filter(|l| !l.contains("Progress: "))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "{}; its last lines:\n{}\n--- libvirtd.log ---\n{}\n--- {DOMAIN}'s log ---\n{}",
        out.status,
        last_lines(&said, 20),
        log_tail("/var/log/libvirt/libvirtd.log"),
        log_tail(&format!("/var/log/libvirt/qemu/{DOMAIN}.log")),
    )
}

/// The last lines of a log libvirt keeps, for a failure message.
fn log_tail(path: &str) -> String {
    match std::fs::read_to_string(path) {
        Ok(log) => last_lines(&log, 12),
        Err(e) => format!("({path}: {e})"),
    }
}

/// The last `n` lines of `text`.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn virsh(args: &[&str]) -> Output {
    Command::new("virsh")
        .arg("-c")
        .arg(URI)
        .args(args)
        .output()
        .expect("virsh runs (Debian: libvirt-clients, see scripts/bootstrap)")
}

/// The names `virsh <args> --name` lists, sorted; none when it fails (a
/// pool that does not exist has no volumes).
fn virsh_names(args: &[&str]) -> Vec<String> {
    let out = virsh(args);
    if !out.status.success() {
        return Vec::new();
    }
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// The volumes of the `default` pool, sorted; none when the pool does not
/// exist. `vol-list` has no `--name`: the names are the first column of its
/// table, below the dashes.
fn default_pool_volumes() -> Vec<String> {
    let out = virsh(&["vol-list", "default"]);
    if !out.status.success() {
        return Vec::new();
    }
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// What libvirt holds that a Vagrant run could add: domains, networks,
/// storage pools and the volumes of the `default` pool.
#[derive(Debug, PartialEq, Eq)]
struct LibvirtState {
    domains: Vec<String>,
    networks: Vec<String>,
    pools: Vec<String>,
    volumes: Vec<String>,
}

impl LibvirtState {
    fn read() -> Self {
        Self {
            domains: virsh_names(&["list", "--all", "--name"]),
            networks: virsh_names(&["net-list", "--all", "--name"]),
            pools: virsh_names(&["pool-list", "--all", "--name"]),
            volumes: default_pool_volumes(),
        }
    }
}

/// Whether a process whose name is `comm` runs on the machine (a zombie
/// keeps its name but serves nothing).
fn running(comm: &str) -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == comm)
                && std::fs::read_to_string(e.path().join("status"))
                    .is_ok_and(|s| !s.contains("State:\tZ"))
        })
}

/// libvirt checks `/dev/kvm` as its QEMU user; when that user cannot open
/// it (a machine without udev leaves it root-only), libvirt takes the
/// QEMU capabilities it probed as stale and probes QEMU again at every call
/// (36 QEMUs started in one `vagrant up`, ~70 s, each one a chance to fail).
/// scripts/bootstrap gives /dev/kvm Debian's udev permissions.
fn assert_libvirt_trusts_its_capabilities() {
    if !Path::new("/dev/kvm").exists() {
        return;
    }
    let out = Command::new("runuser")
        .args([
            "-u",
            "libvirt-qemu",
            "--",
            "test",
            "-r",
            "/dev/kvm",
            "-a",
            "-w",
            "/dev/kvm",
        ])
        .output()
        .expect("runuser runs (util-linux)");
    assert!(
        out.status.success(),
        "libvirt's QEMU user cannot open /dev/kvm, so libvirt would probe QEMU at every call; \
         run scripts/bootstrap (it makes /dev/kvm root:kvm 0660, as udev does on Debian): {}",
        text(&out)
    );
}

/// The libvirt daemons this test started (none when they already ran:
/// there is no systemd here to start them on demand); stopped on drop.
struct Daemons(Vec<Child>);

impl Daemons {
    fn ensure_running() -> Self {
        let mut started = Vec::new();
        for daemon in ["virtlogd", "libvirtd"] {
            if !running(daemon) {
                let child = Command::new(daemon)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|e| {
                        panic!("{daemon} starts (Debian: libvirt-daemon-system): {e}")
                    });
                started.push(child);
            }
        }
        let daemons = Self(started);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = virsh(&["version"]);
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "libvirtd did not answer on {URI} within 60 s: {}",
                text(&out)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        daemons
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        // libvirtd first (it talks to virtlogd), SIGTERM so it shuts down
        // cleanly, then reap each.
        for child in self.0.iter_mut().rev() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

/// Undoes a Vagrant run that failed half-way: the domain, the box's base
/// volume, the `default` pool when vagrant-libvirt made it.
struct VagrantRun {
    project: PathBuf,
    home: PathBuf,
    before: LibvirtState,
}

impl VagrantRun {
    fn vagrant(&self, args: &[&str], timeout_secs: u32) -> Output {
        Command::new("timeout")
            .arg(timeout_secs.to_string())
            .arg("vagrant")
            .args(args)
            .current_dir(&self.project)
            .env("VAGRANT_HOME", &self.home)
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .env("KILN_BOX", BOX)
            .stdin(Stdio::null())
            .output()
            .expect("vagrant runs")
    }

    /// Deletes the base volumes vagrant-libvirt uploaded for the test's box
    /// (`vagrant destroy` keeps them for the next `up`), and the `default`
    /// pool if vagrant-libvirt made it.
    /// Returns what virsh refused.
    fn remove_base_volumes(&self) -> String {
        let mut refused = String::new();
        for volume in default_pool_volumes() {
            if volume.starts_with(BOX) && !self.before.volumes.contains(&volume) {
                let out = virsh(&["vol-delete", "--pool", "default", &volume]);
                if !out.status.success() {
                    refused.push_str(&text(&out));
                }
            }
        }
        refused
    }

    /// Removes the `default` pool when vagrant-libvirt made it (its
    /// directory stays, as libvirt's own does).
    fn remove_pool_if_made(&self) {
        if !self.before.pools.iter().any(|p| p == "default") {
            let _ = virsh(&["pool-destroy", "default"]);
            let _ = virsh(&["pool-undefine", "default"]);
        }
    }
}

impl Drop for VagrantRun {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.vagrant(&["destroy", "-f"], 180);
            let _ = self.remove_base_volumes();
            self.remove_pool_if_made();
        }
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn vm_the_top_level_vagrantfile_boots_the_tiny_box_with_vagrant_libvirt() {
    let _vm = crate::vm::vm_lock();
    let scratch = tempfile::tempdir().expect("tempdir");
    // Not in the repo: vagrant reads the Vagrantfile of its working
    // directory and makes a `.vagrant/` beside it.
    let plugins = Command::new("vagrant")
        .args(["plugin", "list"])
        .current_dir(scratch.path())
        .env("VAGRANT_HOME", scratch.path().join("vagrant-home"))
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .expect("vagrant runs");
    assert!(
        text(&plugins).contains("vagrant-libvirt"),
        "vagrant-libvirt is not installed (scripts/bootstrap installs it): {}",
        text(&plugins)
    );
    assert_libvirt_trusts_its_capabilities();
    let boxfile = crate::vm::built_box();
    let _daemons = Daemons::ensure_running();

    let project = scratch.path().join("project");
    std::fs::create_dir(&project).expect("mkdir");
    std::fs::copy(repo().join("Vagrantfile"), project.join("Vagrantfile")).expect("copy");
    let run = VagrantRun {
        project,
        home: scratch.path().join("vagrant-home"),
        before: LibvirtState::read(),
    };
    let list = crate::support::vagrant_box_add(&run.home, BOX, &boxfile);
    assert!(list.contains(&format!("{BOX} (libvirt")), "{list}");

    let started = Instant::now();
    let up = run.vagrant(&["up", "--provider=libvirt"], 600);
    let t = text(&up);
    assert!(up.status.success(), "vagrant up: {}", failure(&up));
    eprintln!("vagrant up: {:?}", started.elapsed());
    // The box's Vagrantfile asks for a `qemu` domain: it was built under TCG.
    assert!(t.contains("Domain type:       qemu"), "{t}");
    assert!(t.contains("Machine booted and ready"), "{t}");

    let ssh = run.vagrant(&["ssh", "-c", "uname -a; cat /root/kiln-marker"], 120);
    let t = text(&ssh);
    assert!(ssh.status.success(), "vagrant ssh -c: {}", failure(&ssh));
    // The tiny guest's kernel and examples/tiny's provisioner's marker.
    assert!(t.contains("Linux tiny "), "{t}");
    assert!(t.contains("provisioned by kiln"), "{t}");

    let destroy = run.vagrant(&["destroy", "-f"], 180);
    assert!(
        destroy.status.success(),
        "vagrant destroy: {}",
        failure(&destroy)
    );
    let refused = run.remove_base_volumes();
    assert!(refused.is_empty(), "virsh vol-delete: {refused}");
    // No domain, network or volume left behind (read while the pool that
    // vagrant-libvirt may have made still lists its volumes), then no pool.
    let after = LibvirtState::read();
    assert_eq!(after.domains, run.before.domains);
    assert_eq!(after.networks, run.before.networks);
    assert_eq!(after.volumes, run.before.volumes);
    run.remove_pool_if_made();
    assert_eq!(LibvirtState::read(), run.before);
}

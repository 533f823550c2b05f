//! The tutorial's promise, checked for real: examples/django bakes a Django
//! site onto the Debian base image (scripts/build-debian-base), and the baked
//! image, booted alone in a fresh QEMU, serves the site and its admin on
//! port 7777 with the superuser the bake created.
//!
//! Slow: measured here under TCG at load ~17, the bake took 676 s and the
//! baked image served its first page 96 s after QEMU started (807 s in all
//! with the base image cached; a cold base adds ~6.5 min). `.ci/run` (~16 min
//! today, 30 at most) cannot hold that: `#[ignore]`d, run by `scripts/test --slow`.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::vm::{text, vm_lock};

/// The admin password given to the bake; it must never appear in kiln's output.
const ADMIN_PASSWORD: &str = "Tutorial-s3cret-7777";

/// How long a booted image may take to serve its first page under TCG.
const SITE_BOUND: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The base image (built once, cached in iso-cache/ across runs).
fn debian_base() -> PathBuf {
    let started = Instant::now();
    let out = Command::new(repo().join("scripts/build-debian-base"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/build-debian-base runs");
    assert!(
        out.status.success(),
        "building the Debian base image failed"
    );
    eprintln!("debian base: {:?}", started.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().next().expect("image path"))
}

/// A copy of examples/django in a temporary directory.
fn django_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("cp")
        .arg("-a")
        .arg(repo().join("examples/django/."))
        .arg(dir.path())
        .status()
        .expect("cp runs");
    assert!(out.success(), "copying examples/django");
    dir
}

/// A QEMU guest that is killed when the test ends, pass or fail.
struct Guest {
    child: Child,
    serial: PathBuf,
}

impl Guest {
    /// Boots a throwaway overlay of `image` with port 7777 forwarded to
    /// `port` on loopback, and nothing else: no ISO, no provisioning.
    fn boot(image: &Path, dir: &Path, port: u16) -> Guest {
        let overlay = dir.join("run.qcow2");
        let made = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(image)
            .arg(&overlay)
            .status()
            .expect("qemu-img runs");
        assert!(made.success(), "qemu-img create overlay");
        let serial = dir.join("serial.log");
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-accel", "tcg", "-m", "512", "-display", "none", "-monitor", "none",
            ])
            .arg("-drive")
            .arg(format!("file={},if=virtio", overlay.display()))
            .arg("-netdev")
            .arg(format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:7777"))
            .args(["-device", "virtio-net-pci,netdev=n0"])
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu-system-x86_64 starts");
        Guest { child, serial }
    }

    fn serial_log(&self) -> String {
        std::fs::read_to_string(&self.serial).unwrap_or_default()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `curl` with a cookie jar in `dir`: (HTTP status, body).
fn curl(dir: &Path, args: &[&str]) -> Option<(u16, String)> {
    let jar = dir.join("cookies.txt");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-c"])
        .arg(&jar)
        .arg("-b")
        .arg(&jar)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_owned()))
}

/// Polls `url` until it answers 200 (the guest boots, systemd starts the
/// unit), failing with the serial console if the bound passes or QEMU dies.
fn wait_for_page(guest: &mut Guest, dir: &Path, url: &str) -> String {
    let deadline = Instant::now() + SITE_BOUND;
    loop {
        if let Some((200, body)) = curl(dir, &["--connect-timeout", "5", url]) {
            return body;
        }
        if let Ok(Some(status)) = guest.child.try_wait() {
            panic!(
                "QEMU exited ({status}) before {url} answered:\n{}",
                guest.serial_log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer within {SITE_BOUND:?}; serial console:\n{}",
            guest.serial_log()
        );
        // curl returns at once while QEMU's forward has no guest listener.
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Logs in through the admin form as `django` with `password`: the status
/// of the POST (302 on success, 200 with the form again on failure) and
/// the page that follows.
fn admin_login(dir: &Path, base: &str, password: &str) -> (u16, String) {
    let login = format!("{base}/admin/login/");
    let (_, form) = curl(dir, &[&login]).expect("the login page answers");
    let token = form
        .split("name=\"csrfmiddlewaretoken\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the login form")
        .to_owned();
    let (code, body) = curl(
        dir,
        &[
            "--data-urlencode",
            &format!("csrfmiddlewaretoken={token}"),
            "--data-urlencode",
            "username=django",
            "--data-urlencode",
            &format!("password={password}"),
            "--data-urlencode",
            "next=/admin/",
            "-e",
            &login,
            &login,
        ],
    )
    .expect("the login form answers");
    if code != 302 {
        return (code, body);
    }
    let (_, admin) = curl(dir, &[&format!("{base}/admin/")]).expect("/admin/ answers");
    (code, admin)
}

/// Bakes `template` of examples/django onto the base image, boots the
/// artifact alone and checks the site, the admin and the superuser.
fn bake_and_serve(template: &str, artifact: &str, extra_path: Option<&Path>) {
    let base = debian_base();
    let _vm = vm_lock();
    let work = django_example();
    let mut kiln = Command::new(crate::support::kiln_bin());
    kiln.current_dir(work.path())
        .env("KILN_CACHE_DIR", work.path().join("cache"))
        .env("NO_COLOR", "1")
        .arg("build")
        .arg(format!("-var=base_image={}", base.display()))
        .arg(format!("-var=django_admin_password={ADMIN_PASSWORD}"))
        .arg(template);
    if let Some(dir) = extra_path {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_owned()];
        dirs.extend(std::env::split_paths(&path));
        kiln.env("PATH", std::env::join_paths(dirs).expect("PATH"));
    }
    let started = Instant::now();
    let out = kiln.output().expect("kiln runs");
    eprintln!("django bake ({template}): {:?}", started.elapsed());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        !t.contains(ADMIN_PASSWORD),
        "the admin password was printed:\n{t}"
    );
    assert!(t.contains("superuser: django@example.com"), "{t}");
    assert!(t.contains("site answers: HTTP 200"), "{t}");
    let image = work.path().join(artifact);
    assert!(image.is_file(), "no {artifact}:\n{t}");

    // A fresh VM from the artifact alone.
    let started = Instant::now();
    let port = free_port();
    let run = tempfile::tempdir().expect("tempdir");
    let mut guest = Guest::boot(&image, run.path(), port);
    let base_url = format!("http://127.0.0.1:{port}");
    let home = wait_for_page(&mut guest, run.path(), &format!("{base_url}/"));
    eprintln!("baked image serves / after {:?}", started.elapsed());
    assert!(
        home.contains("The install worked successfully! Congratulations!"),
        "not Django's start page:\n{home}"
    );
    let (code, login) = curl(run.path(), &[&format!("{base_url}/admin/login/")])
        .expect("the admin login page answers");
    assert_eq!(code, 200, "{login}");
    assert!(login.contains("Django administration"), "{login}");
    assert!(login.contains("name=\"password\""), "{login}");

    // The superuser exists with the sensitive password, and only with it.
    let (code, page) = admin_login(run.path(), &base_url, "not-the-password");
    assert_eq!(code, 200, "a wrong password must not log in:\n{page}");
    assert!(
        page.contains("Please enter the correct username and password"),
        "{page}"
    );
    let (code, page) = admin_login(run.path(), &base_url, ADMIN_PASSWORD);
    assert_eq!(code, 302, "logging in as django failed:\n{page}");
    assert!(page.contains("Site administration"), "{page}");
    assert!(page.contains("<strong>django</strong>"), "{page}");
    eprintln!("boot, fetch and log in: {:?}", started.elapsed());
}

#[test]
#[ignore = "slow (base image + bake under TCG): scripts/test --slow"]
fn vm_django_bake_serves_the_site_and_admin_when_the_image_boots_alone() {
    bake_and_serve("django.json", "output-django/django.qcow2", None);
}

/// The same bake with the `ansible` provisioner (examples/django/ansible):
/// ansible-playbook from the project's `.venv`, first on PATH.
#[test]
#[ignore = "slow (base image + bake under TCG): scripts/test --slow"]
fn vm_django_bake_with_ansible_serves_the_site_and_admin_when_the_image_boots_alone() {
    let venv = repo().join(".venv/bin");
    assert!(
        venv.join("ansible-playbook").is_file(),
        "no {}/ansible-playbook: run scripts/bootstrap",
        venv.display()
    );
    bake_and_serve(
        "ansible/django-ansible.json",
        "output-django-ansible/django-ansible.qcow2",
        Some(&venv),
    );
}

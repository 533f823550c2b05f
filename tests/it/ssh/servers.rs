//! Real SSH servers for the communicator tests: OpenSSH's sshd and dropbear,
//! started on 127.0.0.1 by the test that needs them and killed with it.
//!
//! Each runs in its own mount namespace (`unshare -m`), where a copy of
//! /etc/shadow gives root a test password and dropbear finds the test key
//! in /root/.ssh. Nothing outside the namespace changes, so the machine is
//! left as it was. Needs root, `unshare`, sshd and/or dropbear; when any of
//! that is missing the test is skipped loudly rather than failed.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "kiln-test-password";
const SSHD: &str = "/usr/sbin/sshd";
const DROPBEAR: &str = "/usr/sbin/dropbear";
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    OpenSsh,
    Dropbear,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub kind: Kind,
    /// Make the sftp-server binary unusable inside the server's namespace,
    /// as on a guest that has none.
    pub without_sftp_server: bool,
}

impl Kind {
    pub fn options(self) -> Options {
        Options {
            kind: self,
            without_sftp_server: false,
        }
    }
}

/// Key material and config for one server, made before it starts so a test
/// can start it later (the "server comes up while we wait" case).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub client_key: PathBuf,
    options: Options,
}

pub struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The server leads its own process group; end all of it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why the servers cannot run here, if they cannot.
fn missing(kind: Kind) -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("the SSH tests need root (to run sshd/dropbear and log in as root)".into());
    }
    let (bin, package) = match kind {
        Kind::OpenSsh => (SSHD, "openssh-server"),
        Kind::Dropbear => (DROPBEAR, "dropbear-bin"),
    };
    for (path, pkg) in [
        (bin, package),
        ("/usr/bin/ssh-keygen", "openssh-client"),
        ("/usr/bin/scp", "openssh-client"),
        ("/usr/bin/openssl", "openssl"),
        (SFTP_SERVER, "openssh-sftp-server"),
    ] {
        if !Path::new(path).exists() {
            return Some(format!("{path} is missing (apt-get install {pkg})"));
        }
    }
    if kind == Kind::Dropbear && !Path::new("/usr/bin/dropbearkey").exists() {
        return Some("/usr/bin/dropbearkey is missing (apt-get install dropbear-bin)".into());
    }
    let unshare = Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .stderr(Stdio::null())
        .status();
    if !unshare.is_ok_and(|s| s.success()) {
        return Some("`unshare -m` does not work here (no mount namespaces)".into());
    }
    None
}

/// The fixture for `options`, or None (after a loud message) when the
/// server cannot run on this machine.
pub fn fixture(test: &str, options: Options) -> Option<Fixture> {
    if let Some(why) = missing(options.kind) {
        eprintln!("\n!!! SKIPPED {test}: {why}\n");
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let client_key = dir.path().join("client_key");
    keygen(&client_key, "ed25519");
    Some(Fixture {
        port: free_port(),
        client_key,
        dir,
        options,
    })
}

/// Starts the server and waits until it accepts connections.
pub fn start(test: &str, options: Options) -> Option<(Fixture, Server)> {
    let fixture = fixture(test, options)?;
    let server = fixture.start();
    wait_listening(fixture.port, Duration::from_secs(10)).expect("test SSH server listens");
    Some((fixture, server))
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Polls until something accepts on `port`; returns when it did.
pub fn wait_listening(port: u16, limit: Duration) -> Option<Instant> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

pub fn keygen(path: &Path, kind: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "kiln-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen -t {kind}");
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A copy of /etc/shadow in which root's password is PASSWORD.
fn shadow_copy(dir: &Path) -> PathBuf {
    let hash = Command::new("openssl")
        .args(["passwd", "-6", "-salt", "kilntestsalt", PASSWORD])
        .output()
        .expect("openssl passwd runs");
    let hash = String::from_utf8_lossy(&hash.stdout).trim().to_owned();
    let original = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    let mut text: String = original
        .lines()
        .filter(|l| !l.starts_with("root:"))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!("root:{hash}:19000:0:99999:7:::\n"));
    let path = dir.join("shadow");
    write(&path, &text);
    path
}

impl Fixture {
    pub fn start(&self) -> Server {
        let dir = self.dir.path();
        let public =
            std::fs::read_to_string(self.client_key.with_extension("pub")).expect("public key");
        let shadow = shadow_copy(dir);
        let mut mounts = vec![(shadow, PathBuf::from("/etc/shadow"))];
        if self.options.without_sftp_server {
            mounts.push(("/dev/null".into(), SFTP_SERVER.into()));
        }
        let server_command = match self.options.kind {
            Kind::OpenSsh => {
                let host_key = dir.join("host_ed25519");
                keygen(&host_key, "ed25519");
                let authorized = dir.join("authorized_keys");
                write(&authorized, &public);
                let config = dir.join("sshd_config");
                write(
                    &config,
                    &format!(
                        "ListenAddress 127.0.0.1\n\
                         HostKey {}\n\
                         PidFile {}\n\
                         AuthorizedKeysFile {}\n\
                         PasswordAuthentication yes\n\
                         KbdInteractiveAuthentication no\n\
                         PermitRootLogin yes\n\
                         UsePAM no\n\
                         StrictModes no\n\
                         Subsystem sftp {SFTP_SERVER}\n\
                         LogLevel ERROR\n",
                        host_key.display(),
                        dir.join("sshd.pid").display(),
                        authorized.display(),
                    ),
                );
                // sshd's privilege-separation directory; the package makes
                // it when its service starts, which never happens here.
                std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
                format!("exec {SSHD} -D -e -f {} -p {}", config.display(), self.port)
            }
            Kind::Dropbear => {
                let host_key = dir.join("dropbear_host_key");
                let status = Command::new("dropbearkey")
                    .args(["-t", "ed25519", "-f"])
                    .arg(&host_key)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("dropbearkey runs");
                assert!(status.success(), "dropbearkey");
                // dropbear reads ~/.ssh/authorized_keys only.
                let dot_ssh = dir.join("dot-ssh");
                std::fs::create_dir(&dot_ssh).expect("mkdir");
                write(&dot_ssh.join("authorized_keys"), &public);
                if !Path::new("/root/.ssh").exists() {
                    std::fs::create_dir_all("/root/.ssh").expect("create /root/.ssh");
                }
                mounts.push((dot_ssh, "/root/.ssh".into()));
                format!(
                    "exec {DROPBEAR} -F -E -r {} -P {} -p 127.0.0.1:{}",
                    host_key.display(),
                    dir.join("dropbear.pid").display(),
                    self.port
                )
            }
        };
        let mut script = String::from("set -e\n");
        for (from, to) in &mounts {
            script.push_str(&format!(
                "mount --bind '{}' '{}'\n",
                from.display(),
                to.display()
            ));
        }
        script.push_str(&server_command);
        let log = std::fs::File::create(dir.join("server.log")).expect("server log");
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start the test SSH server");
        Server { child }
    }

    /// What the server printed, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}
// A failing test shows what the server said.
impl Drop for Fixture {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test SSH server log:\n{}", self.log());
        }
    }
}

//! What the cloud tests share: the emulators they start (fake-gce, the
//! project's GCE emulator, and moto behind tests/fake-aws), the environment
//! that points kiln at them, and running post-processor chains in-process
//! with a recording reporter. One copy, so a fix to the setup reaches every
//! cloud test.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kiln::artifact::Artifact;
use kiln::config::post_processor::PostProcessor;
use kiln::postprocess::{PostProcessContext, run_chains};
use kiln::ui::RecordingReporter;

use crate::postprocess::context;
use crate::support::kiln_bin;
use crate::vm::tiny_iso;

/// Post-processor chains, as `crate::postprocess::chains` decodes them.
pub(crate) type Chains = Vec<Vec<PostProcessor>>;

/// Runs `chains` on `artifact` in-process; the error as its whole chain.
pub(crate) fn run_post_processors(
    chains: &[Vec<PostProcessor>],
    artifact: Artifact,
    ctx: &PostProcessContext,
) -> Result<Vec<Artifact>, String> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run_chains(chains, artifact, ctx))
        .map_err(|e| kiln::error_chain::error_chain(&e, ": "))
}

/// A context whose environment is `env` (and HOME in `dir`, so no
/// shared file of the machine is read), reporting to a recorder.
pub(crate) fn recording_ctx(
    dir: &Path,
    env: &[(&'static str, String)],
) -> (PostProcessContext, Arc<RecordingReporter>) {
    let reporter = Arc::new(RecordingReporter::new());
    let mut ctx = context(dir, "run-1", reporter.clone());
    let mut map: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    map.insert("HOME".into(), dir.display().to_string());
    ctx.env = Some(Arc::new(map));
    (ctx, reporter)
}

/// stdout then stderr of a finished command.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ------------------------------------------------------------ fake-gce

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running emulator, stopped (with its instances) when dropped.
pub(crate) struct FakeGce {
    child: Child,
    pub(crate) url: String,
    /// `host:port` of the metadata server `--host-metadata` starts.
    pub(crate) metadata_host: Option<String>,
    dir: tempfile::TempDir,
}

impl FakeGce {
    pub(crate) fn start(extra: &[&str]) -> Self {
        Self::start_with_env(extra, &[])
    }

    /// `env`: the emulator's own switches (FAKE_GCE_HOLD_CHUNK, …).
    pub(crate) fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (iso, _) = tiny_iso();
        let mut child = Command::new(repo().join(".venv/bin/python"))
            .envs(env.iter().copied())
            .arg(repo().join("tests/fake-gce/fake_gce.py"))
            .arg("--iso")
            .arg(iso)
            .arg("--write-key")
            .arg(dir.path().join("key.json"))
            .arg("--write-unknown-key")
            .arg(dir.path().join("unknown-key.json"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("fake-gce.log")).expect("log"))
            .spawn()
            .expect("fake-gce starts (is .venv made? scripts/bootstrap)");
        let stdout = child.stdout.take().expect("stdout");
        let mut url = None;
        let mut metadata_host = None;
        // The base image is built once (a tiny install, ~1 min) and cached.
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if let Some(h) = line.strip_prefix("fake-gce: metadata server on ") {
                metadata_host = Some(h.trim().to_owned());
            }
            if let Some(u) = line.strip_prefix("fake-gce: listening on ") {
                url = Some(u.trim().to_owned());
                break;
            }
        }
        let url = url.unwrap_or_else(|| {
            panic!(
                "fake-gce did not start:\n{}",
                std::fs::read_to_string(dir.path().join("fake-gce.log")).unwrap_or_default()
            )
        });
        Self {
            child,
            url,
            metadata_host,
            dir,
        }
    }

    /// A service-account key file the emulator's token endpoint accepts.
    pub(crate) fn key(&self) -> PathBuf {
        self.dir.path().join("key.json")
    }

    /// A well-formed key the emulator never issued (refused with
    /// `invalid_grant`).
    pub(crate) fn unknown_key(&self) -> PathBuf {
        self.dir.path().join("unknown-key.json")
    }

    /// The environment that points kiln at the emulator: compute, Cloud
    /// Storage and IAM Credentials, with the variables Google's tools read.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
                format!("{}/compute/v1/", self.url),
            ),
            (
                "STORAGE_EMULATOR_HOST",
                self.url.trim_start_matches("http://").to_owned(),
            ),
            (
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
                format!("{}/", self.url),
            ),
        ]
    }

    pub(crate) fn state(&self) -> serde_json::Value {
        let out = Command::new(repo().join(".venv/bin/python"))
            .arg("-c")
            .arg("import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())")
            .arg(format!("{}/emulator/v1/state", self.url))
            .output()
            .expect("python");
        serde_json::from_slice(&out.stdout).expect("state JSON")
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fake-gce.log")).unwrap_or_default()
    }

    /// `kiln build` in `dir` against this emulator, with `key` as the
    /// application default credentials.
    pub(crate) fn kiln(&self, dir: &Path, key: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(kiln_bin());
        cmd.current_dir(dir)
            .env("NO_COLOR", "1")
            .envs(self.env())
            .env("GOOGLE_APPLICATION_CREDENTIALS", key)
            .env("HOME", self.dir.path())
            .arg("build")
            .args(args);
        cmd
    }
}

impl Drop for FakeGce {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------ moto (fake-aws)

const VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv");
const FAKE_AWS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fake-aws");

/// One moto server for the whole test binary: moto takes 10–18 s to
/// start on a loaded machine, so it is started once, lazily, with IAM
/// authentication on (the key it prints is the one every test signs with).
/// Tests stay independent by each using its own region and bucket (`Scope`).
/// The server exits when its stdin closes, which happens when this process
/// ends however it ends: no python is left behind.
pub(crate) struct FakeAws {
    pub(crate) url: String,
    pub(crate) key: String,
    pub(crate) secret: String,
    pub(crate) log: PathBuf,
    /// Held open for the process's life: closing it stops the server.
    _stdin: Mutex<ChildStdin>,
    _dir: tempfile::TempDir,
}

/// One test's corner of the shared server.
pub(crate) struct Scope {
    pub(crate) aws: &'static FakeAws,
    pub(crate) region: &'static str,
    pub(crate) bucket: &'static str,
}

static SHARED: OnceLock<FakeAws> = OnceLock::new();

impl FakeAws {
    fn shared() -> &'static Self {
        SHARED.get_or_init(Self::start)
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("requests.log");
        let mut child = Command::new(format!("{VENV}/bin/python"))
            .arg(format!("{FAKE_AWS}/server.py"))
            .args(["--auth", "--exit-on-stdin-eof"])
            .env("FAKE_AWS_LOG", &log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts the fake AWS server");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // moto imports slowly on a loaded machine: a generous bound.
        let line = rx
            .recv_timeout(Duration::from_secs(180))
            .expect("the fake AWS server says it is ready");
        let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
        let port = ready["port"].as_u64().expect("port");
        let text = |k: &str| ready[k].as_str().expect("--auth prints a key").to_owned();
        // Reaped by the OS when this process ends; the server ends with it.
        drop(child);
        Self {
            url: format!("http://127.0.0.1:{port}"),
            key: text("access_key_id"),
            secret: text("secret_access_key"),
            log,
            _stdin: Mutex::new(stdin),
            _dir: dir,
        }
    }
}

impl Scope {
    /// The shared server, seen from `region` with `bucket` (both used by no
    /// other test).
    pub(crate) fn new(region: &'static str, bucket: &'static str) -> Self {
        Self {
            aws: FakeAws::shared(),
            region,
            bucket,
        }
    }

    pub(crate) fn inspect(&self, args: &[&str]) -> serde_json::Value {
        let aws = self.aws;
        let out = Command::new(format!("{VENV}/bin/python"))
            .arg(format!("{FAKE_AWS}/inspect_state.py"))
            .args([&aws.url, &aws.key, &aws.secret])
            .args(args)
            .env("INSPECT_REGION", self.region)
            .output()
            .expect("runs inspect_state.py");
        assert!(
            out.status.success(),
            "inspect {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("inspect prints JSON")
    }

    pub(crate) fn make_bucket(&self) {
        self.inspect(&["make-bucket", self.bucket]);
    }

    /// This test's requests: to its bucket, or EC2 calls in its region.
    pub(crate) fn requests(&self) -> Vec<serde_json::Value> {
        let prefix = format!("/{}", self.bucket);
        std::fs::read_to_string(&self.aws.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("log line is JSON"))
            .filter(|r| {
                r["bucket"] == self.bucket
                    || r["path"]
                        .as_str()
                        .is_some_and(|p| p == prefix || p.starts_with(&format!("{prefix}/")))
                    || (r["action"].is_string() && r["region"] == self.region)
            })
            .collect()
    }

    /// Waits (bounded) until a logged request satisfies `pred`.
    pub(crate) fn wait_for_request(&self, pred: impl Fn(&serde_json::Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if self.requests().iter().any(&pred) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no such request within 120 s: {:#?}", self.requests());
    }

    /// The environment that points kiln at the server, in this region.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.aws.url.clone()),
            ("AWS_ACCESS_KEY_ID", self.aws.key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.aws.secret.clone()),
            ("AWS_REGION", self.region.into()),
        ]
    }
}

//! A kiln process interrupted mid-download (SIGINT, SIGKILL) leaves only a
//! `.part`, never a cache entry, and the next run resumes it with Range.
//!
//! The interrupted process is this test binary run again in "child" mode
//! (`child_fetch`, which does nothing unless its environment says so).

mod iso_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iso_support::{Mode, TestServer, data};
use kiln::iso::{ChecksumSpec, FetchOptions, HashAlgo, IsoCache, IsoSource};
use kiln::ui::RecordingReporter;

const ENV_URL: &str = "KILN_ISO_TEST_CHILD_URL";
const ENV_CACHE: &str = "KILN_ISO_TEST_CHILD_CACHE";
const ENV_SUM: &str = "KILN_ISO_TEST_CHILD_CHECKSUM";

/// Child mode: fetch and exit. A no-op in a normal test run.
#[test]
fn child_fetch() {
    let (Ok(url), Ok(cache), Ok(sum)) = (
        std::env::var(ENV_URL),
        std::env::var(ENV_CACHE),
        std::env::var(ENV_SUM),
    ) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // Die on SIGINT like an unhandled Ctrl-C even when the test runner was
    // started with SIGINT ignored (a background job of a script inherits
    // that, and so would this child).
    rt.spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    let src = IsoSource::new(vec![url], ChecksumSpec::parse(&sum).expect("checksum"));
    let _ = rt.block_on(IsoCache::at(cache).get_or_fetch(
        &src,
        &FetchOptions::default(),
        &RecordingReporter::new(),
    ));
}

fn interrupted_run_then_resume(signal: &str) {
    let server = TestServer::start();
    let body = data(3 * 1024 * 1024, 31);
    server.route(
        "/d.iso",
        body.clone(),
        Mode::Slow {
            chunk: 32 * 1024,
            every: Duration::from_millis(10),
        },
    );
    let mut h = HashAlgo::Sha256.hasher();
    h.update(&body);
    let want = h.finalize();
    let dir = std::env::temp_dir().join(format!("kiln-iso-kill-{}-{signal}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_fetch", "--test-threads=1"])
        .env(ENV_URL, server.url("/d.iso"))
        .env(ENV_CACHE, &dir)
        .env(ENV_SUM, want.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    // Interrupt once well past the writer's 1 MiB buffer.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.body_bytes_sent() < 2 * 1024 * 1024 {
        assert!(Instant::now() < deadline, "child made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let exit = child.wait().expect("wait child");
    assert!(!exit.success(), "the child was interrupted");

    let entry = IsoCache::at(&dir).entry_path(&want, "iso");
    let part = PathBuf::from(format!("{}.part", entry.display()));
    assert!(!entry.exists(), "no cache entry from an interrupted run");
    let part_len = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    assert!(part_len > 0, "the .part survives");
    assert!(part_len < body.len() as u64);
    assert_eq!(
        std::fs::read(&part).expect("part"),
        body[..part_len as usize],
        "the part holds a clean prefix"
    );

    server.route("/d.iso", body.clone(), Mode::Normal);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let got = rt
        .block_on(IsoCache::at(&dir).get_or_fetch(
            &IsoSource::new(
                vec![server.url("/d.iso")],
                ChecksumSpec::Digest(want.clone()),
            ),
            &FetchOptions::default(),
            &RecordingReporter::new(),
        ))
        .expect("resumed fetch");
    assert_eq!(got.path, entry);
    assert_eq!(std::fs::read(&entry).expect("entry"), body);
    let last = server.requests("/d.iso").pop().expect("a request");
    assert_eq!(last.range, Some(format!("bytes={part_len}-")));
    remove(&dir);
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigint_mid_download_leaves_a_resumable_part() {
    interrupted_run_then_resume("-INT");
}

#[test]
fn sigkill_mid_download_leaves_a_resumable_part() {
    interrupted_run_then_resume("-KILL");
}

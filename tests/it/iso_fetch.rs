//! ISO acquisition against a real HTTP server on loopback: downloads,
//! resume, mirrors, timeouts, checksums, the cache and offline mode.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::iso_support::{Mode, TestServer, data};
use kiln::iso::{
    ChecksumSpec, Digest, FetchOptions, HashAlgo, IsoCache, IsoError, IsoSource, PruneOptions,
};
use kiln::ui::RecordingReporter;

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "kiln-iso-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn digest(algo: HashAlgo, bytes: &[u8]) -> Digest {
    let mut h = algo.hasher();
    h.update(bytes);
    h.finalize()
}

fn sha256(bytes: &[u8]) -> Digest {
    digest(HashAlgo::Sha256, bytes)
}

fn fast_opts() -> FetchOptions {
    FetchOptions {
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        retries: 3,
        retry_backoff: Duration::from_millis(10),
        ..FetchOptions::default()
    }
}

fn source(urls: &[String], checksum: &str) -> IsoSource {
    IsoSource::new(
        urls.to_vec(),
        ChecksumSpec::parse(checksum).expect("valid checksum"),
    )
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn plain_download_is_verified_cached_and_not_downloaded_again() {
    let server = TestServer::start();
    let body = data(MIB + 123, 1);
    server.route("/d.iso", body.clone(), Mode::Normal);
    let dir = TempDir::new();
    let cache = IsoCache::at(dir.path());
    let want = sha256(&body);
    let src = source(&[server.url("/d.iso")], &want.to_string());
    let rep = RecordingReporter::new();

    let got = cache
        .get_or_fetch(&src, &fast_opts(), &rep)
        .await
        .expect("fetch");
    assert!(got.downloaded);
    assert_eq!(got.digest.as_ref(), Some(&want));
    assert_eq!(got.path, cache.entry_path(&want, "iso"));
    assert_eq!(std::fs::read(&got.path).expect("read entry"), body);
    assert_eq!(
        files_under(&dir.path().join("sha256")),
        vec![
            format!("{}.iso", want.hex()),
            format!("{}.iso.stamp", want.hex())
        ]
    );

    let again = cache
        .get_or_fetch(&src, &fast_opts(), &rep)
        .await
        .expect("hit");
    assert!(!again.downloaded);
    assert_eq!(again.source, "cache");
    assert_eq!(
        server.requests("/d.iso").len(),
        1,
        "a hit is not downloaded"
    );
}

#[tokio::test]
async fn resumes_with_range_after_the_server_drops_mid_file() {
    let server = TestServer::start();
    let body = data(MIB, 2);
    server.route(
        "/d.iso",
        body.clone(),
        Mode::DropAfter {
            bytes: 400_000,
            times: 1,
        },
    );
    let dir = TempDir::new();
    let cache = IsoCache::at(dir.path());
    let want = sha256(&body);
    let rep = RecordingReporter::new();
    let got = cache
        .get_or_fetch(
            &source(&[server.url("/d.iso")], &want.to_string()),
            &fast_opts(),
            &rep,
        )
        .await
        .expect("fetch resumes");
    assert_eq!(std::fs::read(&got.path).expect("entry"), body);
    let reqs = server.requests("/d.iso");
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].range, None);
    let range = reqs[1].range.clone().expect("second request has a Range");
    let from: u64 = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .expect("range start");
    assert!(from > 0 && from <= 400_000, "{range}");
}

#[tokio::test]
async fn a_server_that_ignores_range_restarts_cleanly() {
    let server = TestServer::start();
    let body = data(MIB, 3);
    server.route(
        "/d.iso",
        body.clone(),
        Mode::DropThenIgnoreRange { bytes: 300_000 },
    );
    let dir = TempDir::new();
    let cache = IsoCache::at(dir.path());
    let want = sha256(&body);
    let rep = RecordingReporter::new();
    let got = cache
        .get_or_fetch(
            &source(&[server.url("/d.iso")], &want.to_string()),
            &fast_opts(),
            &rep,
        )
        .await
        .expect("fetch");
    assert_eq!(std::fs::read(&got.path).expect("entry"), body);
    let reqs = server.requests("/d.iso");
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].range.is_some(), "kiln asked to resume");
    assert!(
        rep.events()
            .iter()
            .any(|e| format!("{e:?}").contains("ignored the range request")),
        "{:?}",
        rep.events()
    );
}

#[tokio::test]
async fn a_stale_part_is_rehashed_and_continued() {
    // A .part left by an earlier run (same content prefix): resumed, and
    // the final digest still covers the whole file.
    let server = TestServer::start();
    let body = data(MIB, 4);
    server.route("/d.iso", body.clone(), Mode::Normal);
    let dir = TempDir::new();
    let cache = IsoCache::at(dir.path());
    let want = sha256(&body);
    let entry = cache.entry_path(&want, "iso");
    std::fs::create_dir_all(entry.parent().expect("parent")).expect("mkdir");
    let part = PathBuf::from(format!("{}.part", entry.display()));
    std::fs::write(&part, &body[..500_000]).expect("seed part");
    let got = cache
        .get_or_fetch(
            &source(&[server.url("/d.iso")], &want.to_string()),
            &fast_opts(),
            &RecordingReporter::new(),
        )
        .await
        .expect("fetch");
    assert_eq!(std::fs::read(&got.path).expect("entry"), body);
    assert_eq!(
        server.requests("/d.iso")[0].range.as_deref(),
        Some("bytes=500000-")
    );
    assert!(!part.exists());
}

#[tokio::test]
async fn a_damaged_part_is_discarded_after_a_mismatch_and_downloaded_again() {
    let server = TestServer::start();
    let body = data(MIB, 5);
    server.route("/d.iso", body.clone(), Mode::Normal);
    let dir = TempDir::new();
    let cache = IsoCache::at(dir.path());
    let want = sha256(&body);
    let entry = cache.entry_path(&want, "iso");
    std::fs::create_dir_all(entry.parent().expect("parent")).expect("mkdir");
    std::fs::write(format!("{}.part", entry.display()), vec![0u8; 200_000]).expect("seed");
    let rep = RecordingReporter::new();
    let got = cache
        .get_or_fetch(
            &source(&[server.url("/d.iso")], &want.to_string()),
            &fast_opts(),
            &rep,
        )
        .await
        .expect("fetch");
    assert_eq!(std::fs::read(&got.path).expect("entry"), body);
    assert!(
        rep.warnings()
            .iter()
            .any(|w| w.contains("mismatch after resuming"))
    );
}

#[tokio::test]
async fn redirects_are_followed() {
    let server = TestServer::start();
    let body = data(100_000, 6);
    server.route("/real.iso", body.clone(), Mode::Normal);
    server.route(
        "/old.iso",
        Vec::new(),
        Mode::Redirect(server.url("/real.iso")),
    );
    let dir = TempDir::new();
    let want = sha256(&body);
    let got = IsoCache::at(dir.path())
        .get_or_fetch(
            &source(&[server.url("/old.iso")], &want.to_string()),
            &fast_opts(),
            &RecordingReporter::new(),
        )
        .await
        .expect("fetch");
    assert_eq!(std::fs::read(got.path).expect("entry"), body);
    assert_eq!(server.requests("/real.iso").len(), 1);
}

#[tokio::test]
async fn failing_mirrors_are_reported_and_the_next_one_tried() {
    let server = TestServer::start();
    let body = data(100_000, 7);
    server.route("/missing.iso", Vec::new(), Mode::Status(404));
    server.route("/broken.iso", Vec::new(), Mode::Status(500));
    server.route("/good.iso", body.clone(), Mode::Normal);
    let dir = TempDir::new();
    let want = sha256(&body);
    let opts = FetchOptions {
        retries: 1,
        ..fast_opts()
    };
    let rep = RecordingReporter::new();
    let urls = [
        server.url("/missing.iso"),
        server.url("/broken.iso"),
        server.url("/good.iso"),
    ];
    let got = IsoCache::at(dir.path())
        .get_or_fetch(&source(&urls, &want.to_string()), &opts, &rep)
        .await
        .expect("third mirror works");
    assert_eq!(got.source, urls[2]);
    assert_eq!(
        server.requests("/missing.iso").len(),
        1,
        "404 is not retried"
    );
    assert_eq!(
        server.requests("/broken.iso").len(),
        2,
        "500 is retried once"
    );
    let warnings = rep.warnings().join("\n");
    assert!(
        warnings.contains(&format!("{}: the server answered 404", urls[0])),
        "{warnings}"
    );
    assert!(
        warnings.contains(&format!("{}: the server answered 500", urls[1])),
        "{warnings}"
    );
}

#[tokio::test]
async fn http_errors_name_the_url() {
    let server = TestServer::start();
    server.route("/gone.iso", Vec::new(), Mode::Status(404));
    let dir = TempDir::new();
    let url = server.url("/gone.iso");
    let err = IsoCache::at(dir.path())
        .get_or_fetch(
            &source(std::slice::from_ref(&url), &sha256(b"x").to_string()),
            &fast_opts(),
            &RecordingReporter::new(),
        )
        .await
        .expect_err("404");
    assert_eq!(err.to_string(), format!("{url}: the server answered 404"));

    server.route("/a.iso", Vec::new(), Mode::Status(500));
    server.route("/b.iso", Vec::new(), Mode::Status(503));
    let err = IsoCache::at(dir.path())
        .get_or_fetch(
            &source(
                &[server.url("/a.iso"), server.url("/b.iso")],
                &sha256(b"x").to_string(),
            ),
            &FetchOptions {
                retries: 0,
                ..fast_opts()
            },
            &RecordingReporter::new(),
        )
        .await
        .expect_err("both fail");
    assert!(
        matches!(err, IsoError::AllSourcesFailed { tried: 2, .. }),
        "{err:?}"
    );
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(
        cause,
        Some(format!("{}: the server answered 503", server.url("/b.iso")))
    );
}

#[tokio::test]
async fn a_stalled_server_hits_the_idle_timeout() {
    let server = TestServer::start();
    let body = data(MIB, 8);
    server.route(
        "/slow.iso",
        body.clone(),
        Mode::Stall {
            bytes: 10_000,
            for_: Duration::from_secs(5),
        },
    );
    let dir = TempDir::new();
    let opts = FetchOptions {
        idle_timeout: Duration::from_millis(300),
        retries: 0,
        ..fast_opts()
    };
    let started = Instant::now();
    let err = IsoCache::at(dir.path())
        .get_or_fetch(
            &source(&[server.url("/slow.iso")], &sha256(&body).to_string()),
            &opts,
            &RecordingReporter::new(),
        )
        .await
        .expect_err("stalls");
    assert!(matches!(err, IsoError::Stalled { .. }), "{err:?}");
    assert!(err.to_string().contains("no data for"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Retry warnings say a retry is coming; only the final error says kiln
/// gave up, and after how many attempts.
#[tokio::test]
async fn only_the_final_error_says_kiln_gave_up() {
    let server = TestServer::start();
    let body = data(100_000, 4);
    server.route(
        "/slow.iso",
        body.clone(),
        Mode::Stall {
            bytes: 10_000,
            for_: Duration::from_secs(5),
        },
    );
    let dir = TempDir::new();
    let opts = FetchOptions {
        idle_timeout: Duration::from_millis(300),
        retries: 1,
        ..fast_opts()
    };
    let reporter = RecordingReporter::new();
    let err = IsoCache::at(dir.path())
        .get_or_fetch(
            &source(&[server.url("/slow.iso")], &sha256(&body).to_string()),
            &opts,
            &reporter,
        )
        .await
        .expect_err("stalls");
    let retry: Vec<String> = reporter
        .warnings()
        .into_iter()
        .filter(|w| w.contains("retry 1 of 1"))
        .collect();
    assert_eq!(retry.len(), 1, "{:?}", reporter.warnings());
    assert!(!retry[0].contains("gave up"), "{}", retry[0]);
    assert!(retry[0].contains("no data for"), "{}", retry[0]);
    assert!(
        err.to_string().contains("gave up after 2 attempts"),
        "{err}"
    );
    assert!(err.to_string().contains("kiln cache add"), "{err}");
}

#[tokio::test]
async fn a_wrong_checksum_leaves_no_entry_and_no_part() {
    let server = TestServer::start();
    let body = data(200_000, 9);
    server.route("/d.iso", body.clone(), Mode::Normal);
    let dir = TempDir::new();
    let wrong = sha256(b"something else");
    let url = server.url("/d.iso");
    let err = IsoCache::at(dir.path())
        .get_or_fetch(
            &source(std::slice::from_ref(&url), &wrong.to_string()),
            &fast_opts(),
            &RecordingReporter::new(),
        )
        .await
        .expect_err("mismatch");
    let text = err.to_string();
    assert!(matches!(err, IsoError::ChecksumMismatch { .. }), "{err:?}");
    assert!(text.contains(&url), "{text}");
    assert!(text.contains(&wrong.to_string()), "{text}");
    assert!(text.contains(&sha256(&body).to_string()), "{text}");
    assert_eq!(
        files_under(&dir.path().join("sha256")),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn every_digest_type_and_form_verifies() {
    let server = TestServer::start();
    let body = data(50_000, 10);
    server.route("/d.iso", body.clone(), Mode::Normal);
    for algo in HashAlgo::ALL {
        let d = digest(algo, &body);
        for spec in [d.to_string(), d.hex().to_owned(), d.hex().to_uppercase()] {
            let dir = TempDir::new();
            let cache = IsoCache::at(dir.path());
            let got = cache
                .get_or_fetch(
                    &source(&[server.url("/d.iso")], &spec),
                    &fast_opts(),
                    &RecordingReporter::new(),
                )
                .await
                .unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(
                got.path,
                dir.path()
                    .join(algo.name())
                    .join(format!("{}.iso", d.hex()))
            );
        }
    }
}

#[tokio::test]
async fn checksum_files_in_every_form_local_and_remote() {
    let server = TestServer::start();
    let body = data(50_000, 11);
    server.route("/pub/debian-12.iso", body.clone(), Mode::Normal);
    let s256 = sha256(&body);
    let s512 = digest(HashAlgo::Sha512, &body);
    let md5 = digest(HashAlgo::Md5, &body);
    let other = sha256(b"other");
    let lists = [
        format!(
            "{}  other.iso\n{}  debian-12.iso\n",
            other.hex(),
            s256.hex()
        ),
        format!("{} *debian-12.iso\n", s512.hex()),
        format!(
            "SHA256 (other.iso) = {}\nSHA256 (debian-12.iso) = {}\n",
            other.hex(),
            s256.hex()
        ),
        format!("MD5 (debian-12.iso) = {}\n", md5.hex()),
        format!("{}  ./pub/debian-12.iso\n", s256.hex()),
    ];
    for (i, list) in lists.iter().enumerate() {
        let dir = TempDir::new();
        let local = dir.path().join("SUMS");
        std::fs::write(&local, list).expect("write list");
        let remote_path = format!("/sums-{i}");
        server.route(&remote_path, list.clone().into_bytes(), Mode::Normal);
        for spec in [
            format!("file:{}", local.display()),
            format!("file://{}", local.display()),
            format!("file:{}", server.url(&remote_path)),
        ] {
            let cache_dir = TempDir::new();
            IsoCache::at(cache_dir.path())
                .get_or_fetch(
                    &source(&[server.url("/pub/debian-12.iso")], &spec),
                    &fast_opts(),
                    &RecordingReporter::new(),
                )
                .await
                .unwrap_or_else(|e| panic!("list {i} via {spec}: {e}"));
        }
    }

    let dir = TempDir::new();
    let local = dir.path().join("SUMS");
    std::fs::write(&local, format!("{}  other.iso\n", other.hex())).expect("write");
    let err = IsoCache::at(dir.path())
        .get_or_fetch(
            &source(
                &[server.url("/pub/debian-12.iso")],
                &format!("file:{}", local.display()),
            ),
            &fast_opts(),
            &RecordingReporter::new(),
        )
        .await
        .expect_err("not listed");
    assert!(
        err.to_string().contains("has no line for `debian-12.iso`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_fetches_download_once() {
    let server = TestServer::start();
    let body = data(MIB / 2, 12);
    server.route(
        "/d.iso",
        body.clone(),
        Mode::Slow {
            chunk: 32 * 1024,
            every: Duration::from_millis(10),
        },
    );
    let dir = TempDir::new();
    let want = sha256(&body);
    let src = source(&[server.url("/d.iso")], &want.to_string());
    let fetch = |src: IsoSource, root: PathBuf| async move {
        // Separate cache handles: the lock is on the file system, not in memory.
        let rep = RecordingReporter::new();
        let got = IsoCache::at(root)
            .get_or_fetch(&src, &fast_opts(), &rep)
            .await;
        (got, rep)
    };
    let a = tokio::spawn(fetch(src.clone(), dir.path().to_path_buf()));
    let b = tokio::spawn(fetch(src.clone(), dir.path().to_path_buf()));
    let (a, b) = (a.await.expect("task a"), b.await.expect("task b"));
    let (a, b) = (a.0.expect("fetch a"), b.0.expect("fetch b"));
    assert_eq!(a.path, b.path);
    assert_eq!(std::fs::read(&a.path).expect("entry"), body);
    assert_eq!(server.requests("/d.iso").len(), 1, "one download");
    assert!(a.downloaded != b.downloaded, "exactly one downloaded");
}

#[tokio::test]
async fn offline_uses_the_cache_and_never_the_network() {
    let server = TestServer::start();
    let body = data(100_000, 13);
    server.route("/d.iso", body.clone(), Mode::Normal);
    let dir = TempDir::new();
    let cache = IsoCache::at(dir.path());
    let want = sha256(&body);
    let url = server.url("/d.iso");
    let src = source(std::slice::from_ref(&url), &want.to_string());
    let offline = FetchOptions {
        offline: true,
        ..fast_opts()
    };

    let err = cache
        .get_or_fetch(&src, &offline, &RecordingReporter::new())
        .await
        .expect_err("not cached yet");
    let text = err.to_string();
    assert!(matches!(err, IsoError::OfflineMissing { .. }), "{err:?}");
    assert!(text.contains(&url), "{text}");
    assert!(
        text.contains(&format!("kiln cache add FILE --checksum {want}")),
        "{text}"
    );
    assert!(server.requests("/d.iso").is_empty());

    cache
        .get_or_fetch(&src, &fast_opts(), &RecordingReporter::new())
        .await
        .expect("online fetch");
    let got = cache
        .get_or_fetch(&src, &offline, &RecordingReporter::new())
        .await
        .expect("offline hit");
    assert!(!got.downloaded);
    assert_eq!(server.requests("/d.iso").len(), 1);

    let err = cache
        .get_or_fetch(
            &source(std::slice::from_ref(&url), "none"),
            &offline,
            &RecordingReporter::new(),
        )
        .await
        .expect_err("none offline");
    assert!(matches!(err, IsoError::OfflineNoChecksum { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot be looked up"), "{err}");
}

#[tokio::test]
async fn offline_checksum_files_local_works_remote_needs_a_cached_copy() {
    let server = TestServer::start();
    let body = data(100_000, 14);
    server.route("/d.iso", body.clone(), Mode::Normal);
    let want = sha256(&body);
    server.route(
        "/SUMS",
        format!("{}  d.iso\n", want.hex()).into_bytes(),
        Mode::Normal,
    );
    let dir = TempDir::new();
    let cache = IsoCache::at(dir.path().join("cache"));
    let offline = FetchOptions {
        offline: true,
        ..fast_opts()
    };
    let remote = source(
        &[server.url("/d.iso")],
        &format!("file:{}", server.url("/SUMS")),
    );
    let err = cache
        .get_or_fetch(&remote, &offline, &RecordingReporter::new())
        .await
        .expect_err("no copy of the list");
    assert!(
        matches!(err, IsoError::OfflineChecksumFile { .. }),
        "{err:?}"
    );
    assert!(server.requests("/SUMS").is_empty());

    cache
        .get_or_fetch(&remote, &fast_opts(), &RecordingReporter::new())
        .await
        .expect("online");
    cache
        .get_or_fetch(&remote, &offline, &RecordingReporter::new())
        .await
        .expect("offline with the cached list");
    assert_eq!(server.requests("/SUMS").len(), 1);

    let local_list = dir.path().join("SUMS");
    std::fs::write(&local_list, format!("{}  d.iso\n", want.hex())).expect("write");
    cache
        .get_or_fetch(
            &source(
                &[server.url("/d.iso")],
                &format!("file:{}", local_list.display()),
            ),
            &offline,
            &RecordingReporter::new(),
        )
        .await
        .expect("local list offline");
}

#[tokio::test]
async fn a_cached_file_edited_behind_kilns_back_is_detected() {
    let server = TestServer::start();
    let body = data(200_000, 15);
    server.route("/d.iso", body.clone(), Mode::Normal);
    let dir = TempDir::new();
    let cache = IsoCache::at(dir.path());
    let want = sha256(&body);
    let src = source(&[server.url("/d.iso")], &want.to_string());
    let got = cache
        .get_or_fetch(&src, &fast_opts(), &RecordingReporter::new())
        .await
        .expect("fetch");

    // Same size, one byte changed, mtime put back: only ctime betrays it.
    let before = std::fs::metadata(&got.path).expect("stat");
    let mut edited = body.clone();
    edited[1000] ^= 0xff;
    std::fs::set_permissions(
        &got.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
    std::fs::write(&got.path, &edited).expect("edit");
    let f = std::fs::File::options()
        .write(true)
        .open(&got.path)
        .expect("open");
    f.set_modified(before.modified().expect("mtime"))
        .expect("restore mtime");
    drop(f);

    let rep = RecordingReporter::new();
    let offline = FetchOptions {
        offline: true,
        ..fast_opts()
    };
    let err = cache
        .get_or_fetch(&src, &offline, &rep)
        .await
        .expect_err("corrupt entry is not used");
    assert!(matches!(err, IsoError::OfflineMissing { .. }), "{err:?}");
    assert!(
        rep.warnings().iter().any(|w| w.contains("corrupt")),
        "{:?}",
        rep.warnings()
    );
    assert!(!got.path.exists(), "the corrupt entry is removed");

    let again = cache
        .get_or_fetch(&src, &fast_opts(), &RecordingReporter::new())
        .await
        .expect("downloaded again");
    assert!(again.downloaded);
    assert_eq!(std::fs::read(&again.path).expect("entry"), body);

    // A touched but unchanged file is re-hashed once, then trusted again:
    // the chmod changes its ctime, which the stamp records.
    std::fs::set_permissions(
        &again.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o444),
    )
    .expect("chmod");
    let rep = RecordingReporter::new();
    cache
        .get_or_fetch(&src, &offline, &rep)
        .await
        .expect("re-hashed and accepted");
    assert!(
        rep.events()
            .iter()
            .any(|e| format!("{e:?}").contains("re-hashing"))
    );
    let rep = RecordingReporter::new();
    cache
        .get_or_fetch(&src, &offline, &rep)
        .await
        .expect("trusted through the new stamp");
    assert!(rep.events().is_empty(), "{:?}", rep.events());
}

#[tokio::test]
async fn local_files_are_verified_and_used_in_place() {
    let dir = TempDir::new();
    let body = data(100_000, 16);
    let iso = dir.path().join("local.iso");
    std::fs::write(&iso, &body).expect("write");
    let cache_dir = TempDir::new();
    let cache = IsoCache::at(cache_dir.path());
    let want = sha256(&body);
    let bad = dir.path().join("bad.iso");
    std::fs::write(&bad, b"not it").expect("write");
    let rep = RecordingReporter::new();
    let got = cache
        .get_or_fetch(
            &source(
                &[
                    bad.display().to_string(),
                    format!("file://{}", iso.display()),
                ],
                &want.to_string(),
            ),
            &FetchOptions {
                offline: true,
                ..fast_opts()
            },
            &rep,
        )
        .await
        .expect("second source works");
    assert_eq!(got.path, iso);
    assert!(rep.warnings().iter().any(|w| w.contains("bad.iso")));
    assert!(files_under(cache_dir.path()).is_empty(), "nothing copied");
}

#[tokio::test]
async fn checksum_none_downloads_with_a_loud_warning() {
    let server = TestServer::start();
    let body = data(100_000, 17);
    server.route("/d.iso", body.clone(), Mode::Normal);
    let dir = TempDir::new();
    let rep = RecordingReporter::new();
    let got = IsoCache::at(dir.path())
        .get_or_fetch(&source(&[server.url("/d.iso")], "none"), &fast_opts(), &rep)
        .await
        .expect("fetch");
    assert_eq!(got.digest, Some(sha256(&body)));
    assert!(rep.warnings().iter().any(|w| w.contains("NOT be verified")));
}

#[tokio::test]
async fn iso_target_path_receives_the_download() {
    let server = TestServer::start();
    let body = data(100_000, 18);
    server.route("/d.iso", body.clone(), Mode::Normal);
    let dir = TempDir::new();
    let target = dir.path().join("out").join("my.iso");
    std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
    let mut src = source(&[server.url("/d.iso")], &sha256(&body).to_string());
    src.target_path = Some(target.clone());
    let cache = IsoCache::at(dir.path().join("cache"));
    let got = cache
        .get_or_fetch(&src, &fast_opts(), &RecordingReporter::new())
        .await
        .expect("fetch");
    assert_eq!(got.path, target);
    let again = cache
        .get_or_fetch(&src, &fast_opts(), &RecordingReporter::new())
        .await
        .expect("hit");
    assert!(!again.downloaded);
    assert_eq!(server.requests("/d.iso").len(), 1);
}

#[tokio::test]
async fn cache_add_list_verify_prune() {
    let dir = TempDir::new();
    let cache = IsoCache::at(dir.path().join("cache"));
    let body = data(300_000, 19);
    let file = dir.path().join("seed.iso");
    std::fs::write(&file, &body).expect("write");
    let want = sha256(&body);
    let rep = RecordingReporter::new();

    let err = cache
        .add(&file, Some(&sha256(b"nope")), "iso", &rep)
        .await
        .expect_err("wrong checksum");
    assert!(matches!(err, IsoError::LocalMismatch { .. }), "{err:?}");
    assert!(cache.list().expect("list").is_empty());

    let entry = cache
        .add(&file, Some(&want), "iso", &rep)
        .await
        .expect("add");
    assert_eq!(entry.path, cache.entry_path(&want, "iso"));
    assert!(file.exists(), "add copies, the original stays");

    // Offline fetch now finds it.
    cache
        .get_or_fetch(
            &source(
                &["http://127.0.0.1:9/never.iso".to_owned()],
                &want.to_string(),
            ),
            &FetchOptions {
                offline: true,
                ..fast_opts()
            },
            &rep,
        )
        .await
        .expect("pre-seeded");

    let other = cache
        .add(&file, None, "img", &rep)
        .await
        .expect("add without checksum uses sha256");
    assert_eq!(other.path, cache.entry_path(&want, "img"));
    let listed = cache.list().expect("list");
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|e| !e.partial && e.digest.as_ref() == Some(&want))
    );

    // Corrupt one, leave a stale part, then verify and prune.
    std::fs::set_permissions(
        &other.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
    std::fs::write(&other.path, b"corrupted").expect("corrupt");
    let part = PathBuf::from(format!(
        "{}.part",
        cache.entry_path(&sha256(b"p"), "iso").display()
    ));
    std::fs::write(&part, b"half").expect("part");
    let report = cache.verify(&rep).await.expect("verify");
    assert_eq!(report.good, vec![entry.path.clone()]);
    assert_eq!(report.quarantined.len(), 1);
    assert!(!other.path.exists());
    assert!(rep.warnings().iter().any(|w| w.contains("corrupt")));

    let removed = cache
        .prune(
            &PruneOptions {
                parts: true,
                quarantine: true,
                ..PruneOptions::default()
            },
            &rep,
        )
        .expect("prune");
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(!part.exists());
    let removed = cache
        .prune(
            &PruneOptions {
                older_than: Some(Duration::from_secs(3600)),
                ..PruneOptions::default()
            },
            &rep,
        )
        .expect("prune");
    assert!(removed.is_empty(), "a fresh entry is kept");
    let removed = cache
        .prune(
            &PruneOptions {
                older_than: Some(Duration::ZERO),
                ..PruneOptions::default()
            },
            &rep,
        )
        .expect("prune");
    assert_eq!(removed, vec![entry.path]);
}

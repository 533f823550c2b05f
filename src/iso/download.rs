//! HTTP(S) downloads into a `.part` file: one streaming pass that writes and
//! hashes on a blocking thread while the network task keeps reading, with
//! Range resume, idle timeouts and retries with backoff.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, RANGE};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::FetchOptions;
use super::checksum::{Digest, HashAlgo, Hasher};
use super::error::IsoError;
use crate::ui::Reporter;

/// Chunks in flight to each of the hash and write threads: enough to ride
/// out a hiccup, few enough to keep peak RSS well under 64 MiB (hyper's
/// chunks can be hundreds of KiB on loopback).
const CHANNEL_CHUNKS: usize = 16;
/// Batches the network's small chunks into few `write` calls.
const WRITE_BUF: usize = 1024 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Checksum files are small; refuse to buffer a mistaken multi-GiB URL.
const MAX_CHECKSUM_FILE: usize = 16 * 1024 * 1024;

/// A finished download of a `.part` file (not yet verified).
#[derive(Debug)]
pub(crate) struct Downloaded {
    pub digest: Digest,
    pub size: u64,
    /// The download continued an earlier `.part`.
    pub resumed: bool,
}

pub(crate) fn build_client(opts: &FetchOptions) -> Result<reqwest::Client, IsoError> {
    super::install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .redirect(reqwest::redirect::Policy::limited(10))
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(IsoError::Client)
}

/// Downloads `url` into `part`, retrying transient failures with backoff.
/// With `resume`, an existing `.part` is continued by a Range request.
pub(crate) async fn download_to_part(
    client: &reqwest::Client,
    url: &str,
    part: &Path,
    algo: HashAlgo,
    resume: bool,
    opts: &FetchOptions,
    reporter: &dyn Reporter,
) -> Result<Downloaded, IsoError> {
    let build = opts.build_name.as_str();
    let mut attempt = 0;
    let mut backoff = opts.retry_backoff;
    let mut resume = resume;
    loop {
        match download_once(client, url, part, algo, resume, opts, reporter).await {
            Ok(d) => return Ok(d),
            Err(e) if e.is_transient() && attempt < opts.retries => {
                attempt += 1;
                reporter.warn(
                    build,
                    &format!("{e}; retry {attempt} of {} in {backoff:?}", opts.retries),
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // What arrived before the failure is kept and continued.
                resume = true;
            }
            // Only now has kiln given up; the retry warnings must not say so.
            Err(e) if e.is_transient() && attempt > 0 => {
                return Err(IsoError::GaveUp {
                    url: url.to_owned(),
                    attempts: attempt + 1,
                    last: Box::new(e),
                });
            }
            Err(e) => return Err(e),
        }
    }
}

async fn download_once(
    client: &reqwest::Client,
    url: &str,
    part: &Path,
    algo: HashAlgo,
    resume: bool,
    opts: &FetchOptions,
    reporter: &dyn Reporter,
) -> Result<Downloaded, IsoError> {
    let build = opts.build_name.as_str();
    let existing = if resume {
        std::fs::metadata(part).map(|m| m.len()).unwrap_or(0)
    } else {
        0
    };
    let mut request = client.get(url);
    if existing > 0 {
        request = request.header(RANGE, format!("bytes={existing}-"));
    }
    let mut response = match timeout(opts.idle_timeout, request.send()).await {
        Err(_) => return Err(stalled(url, opts)),
        Ok(Err(e)) => return Err(network(url, "request failed", e)),
        Ok(Ok(r)) => r,
    };
    let status = response.status().as_u16();
    let start = match status {
        206 if existing > 0 => {
            let got = content_range_start(response.headers()).unwrap_or(u64::MAX);
            if got != existing {
                truncate(part)?;
                return Err(IsoError::BadRange {
                    url: url.to_owned(),
                    asked: existing,
                    got,
                });
            }
            reporter.info(build, &format!("{url}: resuming at byte {existing}"));
            existing
        }
        200 => {
            if existing > 0 {
                reporter.info(
                    build,
                    &format!(
                        "{url}: the server ignored the range request; downloading from the start"
                    ),
                );
            }
            0
        }
        416 if existing > 0 => {
            // The part is longer than the file, or stale: start over.
            truncate(part)?;
            return Err(IsoError::RangeRejected {
                url: url.to_owned(),
            });
        }
        _ => {
            return Err(IsoError::HttpStatus {
                url: url.to_owned(),
                status,
            });
        }
    };
    let total = response.content_length().map(|n| n + start);
    let progress = reporter.progress(build, &format!("downloading {url}"), total);
    progress.set_position(start);

    // Hashing and writing each get a thread, so the download runs at the
    // pace of the slowest of network, hash and disk, not of their sum.
    let (tx_hash, rx_hash) = mpsc::channel::<bytes::Bytes>(CHANNEL_CHUNKS);
    let (tx_write, rx_write) = mpsc::channel::<bytes::Bytes>(CHANNEL_CHUNKS);
    let (p1, p2) = (part.to_path_buf(), part.to_path_buf());
    let hasher = tokio::task::spawn_blocking(move || hash_part(&p1, start, algo, rx_hash));
    let writer = tokio::task::spawn_blocking(move || write_part(&p2, start, rx_write));

    let mut received = start;
    let mut failure = None;
    loop {
        match timeout(opts.idle_timeout, response.chunk()).await {
            Err(_) => {
                failure = Some(stalled(url, opts));
                break;
            }
            Ok(Err(e)) => {
                failure = Some(network(url, "connection lost mid-download", e));
                break;
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => {
                received += chunk.len() as u64;
                // A send error means a thread failed; its error is below.
                if tx_hash.send(chunk.clone()).await.is_err() || tx_write.send(chunk).await.is_err()
                {
                    break;
                }
                progress.set_position(received);
            }
        }
    }
    drop((tx_hash, tx_write));
    // Whatever arrived is written before we return, so a retry or a later
    // run resumes exactly after it.
    let written = writer.await.map_err(|e| IsoError::Task(e.to_string()))?;
    let hashed = hasher.await.map_err(|e| IsoError::Task(e.to_string()))?;
    let (hasher, size) = match (hashed, written) {
        (Ok(h), Ok(size)) => (h, size),
        (_, Err(e)) | (Err(e), _) => {
            progress.finish("failed");
            return Err(disk_full(e, part, total));
        }
    };
    if let Some(e) = failure {
        progress.finish("interrupted");
        return Err(e);
    }
    if let Some(expected) = total
        && size != expected
    {
        progress.finish("short");
        return Err(IsoError::Truncated {
            url: url.to_owned(),
            got: size,
            expected,
        });
    }
    progress.finish("downloaded");
    Ok(Downloaded {
        digest: hasher.finalize(),
        size,
        resumed: start > 0,
    })
}

/// The hashing thread: re-hashes the `start` bytes an earlier run left
/// (once), then every chunk as it arrives.
fn hash_part(
    path: &Path,
    start: u64,
    algo: HashAlgo,
    mut rx: mpsc::Receiver<bytes::Bytes>,
) -> Result<Hasher, IsoError> {
    let mut hasher = algo.hasher();
    if start > 0 {
        let file =
            File::open(path).map_err(|e| IsoError::io(path, "cannot open partial download", e))?;
        let mut reader = file.take(start);
        let mut buf = vec![0u8; 256 * 1024];
        let mut left = start;
        while left > 0 {
            let n = match reader.read(&mut buf) {
                Ok(0) => {
                    return Err(IsoError::io(
                        path,
                        "partial download shrank while resuming",
                        io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(IsoError::io(path, "cannot read partial download", e)),
            };
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
    }
    while let Some(chunk) = rx.blocking_recv() {
        hasher.update(&chunk);
    }
    Ok(hasher)
}

/// The writing thread: keeps the first `start` bytes of the part and
/// appends every chunk. No fsync: durability across a crash is handled by
/// stamps being tied to the boot (see `cache.rs`) and by re-hashing parts.
fn write_part(
    path: &Path,
    start: u64,
    mut rx: mpsc::Receiver<bytes::Bytes>,
) -> Result<u64, IsoError> {
    let err = |what| move |e| IsoError::io(path, what, e);
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(err("cannot open partial download"))?;
    file.set_len(start)
        .map_err(err("cannot truncate partial download"))?;
    file.seek(SeekFrom::Start(start))
        .map_err(err("cannot seek partial download"))?;
    let mut out = BufWriter::with_capacity(WRITE_BUF, file);
    let mut size = start;
    while let Some(chunk) = rx.blocking_recv() {
        out.write_all(&chunk).map_err(err("cannot write"))?;
        size += chunk.len() as u64;
    }
    out.flush().map_err(err("cannot write"))?;
    Ok(size)
}

/// Fetches a small text file (a checksum list).
pub(crate) async fn fetch_text(
    client: &reqwest::Client,
    url: &str,
    opts: &FetchOptions,
) -> Result<String, IsoError> {
    let mut response = match timeout(opts.idle_timeout, client.get(url).send()).await {
        Err(_) => return Err(stalled(url, opts)),
        Ok(Err(e)) => return Err(network(url, "request failed", e)),
        Ok(Ok(r)) => r,
    };
    let status = response.status().as_u16();
    if status != 200 {
        return Err(IsoError::HttpStatus {
            url: url.to_owned(),
            status,
        });
    }
    let mut body = Vec::new();
    loop {
        match timeout(opts.idle_timeout, response.chunk()).await {
            Err(_) => return Err(stalled(url, opts)),
            Ok(Err(e)) => return Err(network(url, "connection lost", e)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => {
                body.extend_from_slice(&c);
                if body.len() > MAX_CHECKSUM_FILE {
                    return Err(IsoError::TooLarge {
                        url: url.to_owned(),
                        limit: MAX_CHECKSUM_FILE,
                    });
                }
            }
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A write that failed for lack of space becomes [`IsoError::DiskFull`],
/// with the ISO's size and the space left, so the user knows how much to
/// free (the `.part` keeps what was written, for a resume).
fn disk_full(e: IsoError, part: &Path, total: Option<u64>) -> IsoError {
    match e {
        IsoError::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull => {
            let dir = part.parent().unwrap_or(Path::new("."));
            let free = rustix::fs::statvfs(dir)
                .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
                .unwrap_or(0);
            IsoError::DiskFull {
                part: part.to_path_buf(),
                size: total,
                written: std::fs::metadata(part).map(|m| m.len()).unwrap_or(0),
                free,
                source,
            }
        }
        e => e,
    }
}

fn content_range_start(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    // `bytes START-END/TOTAL`
    let v = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let range = v.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

fn truncate(part: &Path) -> Result<(), IsoError> {
    match File::options().write(true).open(part) {
        Ok(f) => f
            .set_len(0)
            .map_err(|e| IsoError::io(part, "cannot truncate partial download", e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(IsoError::io(part, "cannot open partial download", e)),
    }
}

fn stalled(url: &str, opts: &FetchOptions) -> IsoError {
    IsoError::Stalled {
        url: url.to_owned(),
        after: opts.idle_timeout,
    }
}

fn network(url: &str, what: &'static str, source: reqwest::Error) -> IsoError {
    IsoError::Network {
        url: url.to_owned(),
        what,
        source,
    }
}

/// `path` + `suffix`, keeping non-UTF-8 names intact.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

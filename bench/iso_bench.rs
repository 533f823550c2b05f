//! A small driver for bench/iso.sh: runs one ISO operation on real files
//! so the script can time it and measure peak RSS against sha256sum/curl.
//!
//! usage: iso_bench add CACHE FILE
//!        iso_bench verify CACHE            (re-hash every entry)
//!        iso_bench hit CACHE CHECKSUM      (stamped lookup, no re-hash)
//!        iso_bench fetch CACHE URL CHECKSUM

use std::process::ExitCode;
use std::time::{Duration, Instant};

use kiln::iso::{ChecksumSpec, FetchOptions, IsoCache, IsoSource};
use kiln::ui::{Progress, Reporter};

struct Quiet;
struct NoProgress;

impl Progress for NoProgress {
    fn set_position(&self, _: u64) {}
    fn set_total(&self, _: u64) {}
    fn finish(&self, _: &str) {}
}

impl Reporter for Quiet {
    fn step_started(&self, _: &str, _: &str) {}
    fn step_finished(&self, _: &str, _: &str, _: Duration, _: bool) {}
    fn warn(&self, _: &str, m: &str) {
        eprintln!("warning: {m}");
    }
    fn info(&self, _: &str, _: &str) {}
    fn progress(&self, _: &str, _: &str, _: Option<u64>) -> Box<dyn Progress> {
        Box::new(NoProgress)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let result = match args.as_slice() {
        ["add", cache, file] => IsoCache::at(cache)
            .add(file.as_ref(), None, "iso", &Quiet)
            .await
            .map(|e| format!("{:?}", e.digest.map(|d| d.to_string()))),
        ["verify", cache] => IsoCache::at(cache)
            .verify(&Quiet)
            .await
            .map(|r| format!("{} good, {} bad", r.good.len(), r.quarantined.len())),
        ["hit", cache, sum] => {
            let d = match ChecksumSpec::parse(sum) {
                Ok(ChecksumSpec::Digest(d)) => d,
                other => {
                    eprintln!("need a digest: {other:?}");
                    return ExitCode::FAILURE;
                }
            };
            IsoCache::at(cache)
                .lookup(&d, "iso", "", &Quiet)
                .await
                .map(|p| format!("{p:?}"))
        }
        ["fetch", cache, url, sum] => match ChecksumSpec::parse(sum) {
            Ok(spec) => IsoCache::at(cache)
                .get_or_fetch(
                    &IsoSource::new(vec![(*url).to_owned()], spec),
                    &FetchOptions::default(),
                    &Quiet,
                )
                .await
                .map(|f| format!("{}", f.path.display())),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("usage: iso_bench add|verify|hit|fetch …");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(msg) => {
            println!("{msg} ({:.3} s)", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

//! A driver for bench/ssh-stress.sh: many exec and SCP/SFTP round trips
//! over one session against a real server, counting every failure.
//!
//! usage: ssh_stress PORT KEY_FILE WORK_DIR EXECS TRANSFERS METHOD
//!
//! Prints one line per failure and a summary line:
//! `execs N ok F failed in S s; transfers N ok F failed in S s`.
//! Exits 1 when anything failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln::communicator::ssh::{
    ExitStatus, FileTransfer, SshAuth, SshSession, SshTarget, WaitOptions,
};
use kiln::ui::{Progress, Reporter};
use tokio_util::sync::CancellationToken;

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

struct Args {
    port: u16,
    key: PathBuf,
    work: PathBuf,
    execs: usize,
    transfers: usize,
    method: FileTransfer,
}

fn parse_args() -> Option<Args> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [port, key, work, execs, transfers, method] = a.as_slice() else {
        return None;
    };
    Some(Args {
        port: port.parse().ok()?,
        key: key.into(),
        work: work.into(),
        execs: execs.parse().ok()?,
        transfers: transfers.parse().ok()?,
        method: match method.as_str() {
            "scp" => FileTransfer::Scp,
            "sftp" => FileTransfer::Sftp,
            _ => return None,
        },
    })
}

/// Bytes that do not compress, so the transport moves every one.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn exec_output(session: &SshSession, command: &str) -> Result<(ExitStatus, String), String> {
    let mut out = String::new();
    let status = session
        .exec(command, |_, line| {
            out.push_str(line);
            out.push('\n');
        })
        .await
        .map_err(|e| format!("`{command}`: {e}"))?;
    Ok((status, out))
}

/// One exec round trip: the output and the exit code must be the ones asked for.
async fn one_exec(session: &SshSession, i: usize) -> Result<(), String> {
    let code = i % 3;
    let command = format!("echo line-{i}; echo err-{i} >&2; exit {code}");
    let (status, out) = exec_output(session, &command).await?;
    if status != ExitStatus::Code(code as u32) {
        return Err(format!(
            "`{command}`: {status}, expected exit status {code}"
        ));
    }
    // Both lines, each once: lost or doubled output is a failure. Lines the
    // guest's shell adds on its own (a profile's noise) are not.
    for want in [format!("line-{i}"), format!("err-{i}")] {
        if out.lines().filter(|l| *l == want).count() != 1 {
            return Err(format!("`{command}`: output {out:?}"));
        }
    }
    Ok(())
}

/// One transfer round trip; `i` picks a small file, a large file, a
/// directory, or a failing upload followed at once by a command (the
/// pattern that used to lose the next command).
async fn one_transfer(session: &SshSession, work: &Path, i: usize) -> Result<(), String> {
    let remote = work.join(format!("remote-{i}"));
    let remote_s = remote.display().to_string();
    std::fs::create_dir_all(&remote).map_err(|e| e.to_string())?;
    let local = work.join(format!("local-{i}"));
    std::fs::create_dir_all(&local).map_err(|e| e.to_string())?;
    let result = match i % 4 {
        0 | 1 => {
            let len = if i.is_multiple_of(4) {
                1 + i * 7
            } else {
                4 << 20
            };
            let data = pseudo_random(len, i as u64);
            let src = local.join("f.bin");
            std::fs::write(&src, &data).map_err(|e| e.to_string())?;
            session
                .upload_file(&src, &format!("{remote_s}/f.bin"))
                .await
                .map_err(|e| format!("upload {len} bytes: {e}"))?;
            let back = local.join("back.bin");
            session
                .download(&format!("{remote_s}/f.bin"), &back)
                .await
                .map_err(|e| format!("download {len} bytes: {e}"))?;
            if std::fs::read(&back).map_err(|e| e.to_string())? != data {
                return Err(format!("{len} bytes came back different"));
            }
            Ok(())
        }
        2 => {
            let tree = local.join("tree");
            std::fs::create_dir_all(tree.join("sub")).map_err(|e| e.to_string())?;
            std::fs::write(tree.join("a"), "a\n").map_err(|e| e.to_string())?;
            std::fs::write(tree.join("sub/b"), pseudo_random(100_000, 7))
                .map_err(|e| e.to_string())?;
            session
                .upload_dir(&tree, &remote_s)
                .await
                .map_err(|e| format!("upload_dir: {e}"))?;
            session
                .download_dir(&format!("{remote_s}/tree"), &local.join("back"))
                .await
                .map_err(|e| format!("download_dir: {e}"))?;
            let b = std::fs::read(local.join("back/tree/sub/b")).map_err(|e| e.to_string())?;
            if b != pseudo_random(100_000, 7) {
                return Err("the directory came back different".into());
            }
            Ok(())
        }
        _ => {
            let src = local.join("x");
            std::fs::write(&src, "x\n").map_err(|e| e.to_string())?;
            if session
                .upload_file(&src, &format!("{remote_s}/missing/"))
                .await
                .is_ok()
            {
                return Err("an upload into a missing directory succeeded".into());
            }
            let (status, _) = exec_output(session, &format!("mkdir {remote_s}/missing")).await?;
            if !status.success() {
                return Err(format!("mkdir after a failed upload: {status}"));
            }
            Ok(())
        }
    };
    let _ = std::fs::remove_dir_all(&remote);
    let _ = std::fs::remove_dir_all(&local);
    result
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        eprintln!("usage: ssh_stress PORT KEY_FILE WORK_DIR EXECS TRANSFERS scp|sftp");
        return ExitCode::from(2);
    };
    let target = SshTarget {
        host: "127.0.0.1".into(),
        port: args.port,
        username: "root".into(),
        auth: SshAuth::PrivateKeyFile(args.key.clone()),
    };
    let opts = WaitOptions {
        timeout: Duration::from_secs(30),
        ..WaitOptions::default()
    };
    let mut session = match kiln::communicator::ssh::wait_for_ssh(
        &target,
        &opts,
        Arc::new(Quiet),
        "stress",
        &CancellationToken::new(),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    session.set_file_transfer(args.method);

    let started = Instant::now();
    let mut exec_failures = 0;
    for i in 0..args.execs {
        if let Err(e) = one_exec(&session, i).await {
            exec_failures += 1;
            println!("FAIL exec {i}: {e}");
        }
    }
    let exec_time = started.elapsed();
    let started = Instant::now();
    let mut transfer_failures = 0;
    for i in 0..args.transfers {
        if let Err(e) = one_transfer(&session, &args.work, i).await {
            transfer_failures += 1;
            println!("FAIL transfer {i}: {e}");
        }
    }
    let transfer_time = started.elapsed();
    println!(
        "execs {} ok {exec_failures} failed in {:.1} s; transfers {} ok {transfer_failures} failed in {:.1} s",
        args.execs - exec_failures,
        exec_time.as_secs_f64(),
        args.transfers - transfer_failures,
        transfer_time.as_secs_f64(),
    );
    session.close().await;
    if exec_failures + transfer_failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

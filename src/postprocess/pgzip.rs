//! Parallel gzip, the pigz technique: the input is cut into fixed-size
//! blocks, each compressed on its own thread as raw deflate primed with the
//! previous block's last 32 KiB (so the ratio matches one stream) and ended
//! with a sync flush, which leaves the block byte-aligned and not final.
//! Concatenated in order under one gzip header, with the last block
//! finished and the CRC-32s combined, they form one ordinary gzip stream
//! that `gzip -d`, `tar -z` and bsdtar read.
//!
//! Memory is bounded: at most `2 × threads` blocks are in flight, each
//! holding its input and its compressed output (≈ 2 MiB per block at the
//! default size), whatever the input's size.
//!
//! Why not the gzp crate: gzp 1.0.1 depends on libz-ng-sys whatever its
//! features (its `deflate_rust` feature included), and that needs cmake,
//! which these machines lack. With flate2's zlib-rs backend this writer
//! needs about half the CPU of pigz for the same output size (bench/box.sh).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, FlushCompress, Status};
use tokio_util::sync::CancellationToken;

/// Input bytes per block: large enough that the 32 KiB dictionary and the
/// sync-flush marker cost nothing measurable, small enough to keep every
/// core busy on a modest disk image.
pub const BLOCK_SIZE: usize = 1 << 20;
const DICT_SIZE: usize = 32 * 1024;

struct Job {
    dict: Arc<Vec<u8>>,
    data: Arc<Vec<u8>>,
    last: bool,
    reply: SyncSender<io::Result<Done>>,
}

struct Done {
    compressed: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// A `Write` that produces one gzip stream with all cores.
pub struct ParallelGzWriter<W: Write> {
    inner: Option<W>,
    level: u32,
    buffer: Vec<u8>,
    /// The last 32 KiB of the input submitted so far.
    dict: Arc<Vec<u8>>,
    pending: VecDeque<Receiver<io::Result<Done>>>,
    max_pending: usize,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    crc: crc32fast::Hasher,
    /// Input bytes so far (ISIZE is this modulo 2^32).
    len: u64,
    cancel: Option<CancellationToken>,
    header_written: bool,
}

impl<W: Write> ParallelGzWriter<W> {
    /// `threads == 0` means one per available core.
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let (tx, rx) = sync_channel::<Job>(threads);
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || worker(&rx, level))
            })
            .collect();
        Self {
            inner: Some(inner),
            level: level.min(9),
            buffer: Vec::with_capacity(BLOCK_SIZE),
            dict: Arc::new(Vec::new()),
            pending: VecDeque::new(),
            max_pending: threads * 2,
            jobs: Some(tx),
            workers,
            crc: crc32fast::Hasher::new(),
            len: 0,
            cancel: None,
            header_written: false,
        }
    }

    /// Makes writes fail once `cancel` fires.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = Some(cancel);
        self
    }

    fn inner(&mut self) -> io::Result<&mut W> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // Magic, deflate, no flags, no mtime (reproducible), XFL from
            // the level as gzip sets it, OS = Unix.
            let xfl = match self.level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            self.inner()?
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3])?;
            self.header_written = true;
        }
        Ok(())
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        if let Some(cancel) = &self.cancel
            && cancel.is_cancelled()
        {
            return Err(super::cancelled_io());
        }
        self.write_header()?;
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(BLOCK_SIZE));
        let data = Arc::new(data);
        let next = Arc::new(tail(&data, &self.dict));
        let dict = std::mem::replace(&mut self.dict, next);
        self.len += data.len() as u64;
        let (reply, result) = sync_channel(1);
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))?;
        jobs.send(Job {
            dict,
            data,
            last,
            reply,
        })
        .map_err(|_| io::Error::other("gzip worker threads stopped"))?;
        self.pending.push_back(result);
        while self.pending.len() >= self.max_pending {
            self.collect_one()?;
        }
        Ok(())
    }

    /// Writes the oldest block's output, in order.
    fn collect_one(&mut self) -> io::Result<()> {
        let Some(result) = self.pending.pop_front() else {
            return Ok(());
        };
        let done = result
            .recv()
            .map_err(|_| io::Error::other("a gzip worker thread died"))??;
        self.crc.combine(&done.crc);
        self.inner()?.write_all(&done.compressed)
    }

    /// Ends the stream (last block, trailer) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.collect_one()?;
        }
        let crc = std::mem::take(&mut self.crc);
        let len = self.len;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.finalize().to_le_bytes());
        trailer[4..].copy_from_slice(&(len as u32).to_le_bytes());
        self.inner()?.write_all(&trailer)?;
        let mut inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))?;
        inner.flush()?;
        Ok(inner)
    }
}

/// The last 32 KiB of `previous ++ data`.
fn tail(data: &[u8], previous: &[u8]) -> Vec<u8> {
    if data.len() >= DICT_SIZE {
        data[data.len() - DICT_SIZE..].to_vec()
    } else {
        let keep = DICT_SIZE - data.len();
        let from = previous.len().saturating_sub(keep);
        let mut out = previous[from..].to_vec();
        out.extend_from_slice(data);
        out
    }
}

impl<W: Write> Write for ParallelGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = BLOCK_SIZE - self.buffer.len();
        let n = room.min(buf.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == BLOCK_SIZE {
            self.submit(false)?;
        }
        Ok(n)
    }

    /// Output is only complete at `finish`; flushing does not cut a block.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParallelGzWriter<W> {
    fn drop(&mut self) {
        // Closing the job channel ends the workers; pending replies are
        // dropped, so a worker that still sends finds no receiver.
        self.pending.clear();
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, level: u32) {
    let mut compress = Compress::new(Compression::new(level.min(9)), false);
    loop {
        let job = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let result = compress_block(&mut compress, &job);
        let _ = job.reply.send(result);
    }
}

fn compress_block(compress: &mut Compress, job: &Job) -> io::Result<Done> {
    compress.reset();
    if !job.dict.is_empty() {
        compress
            .set_dictionary(&job.dict)
            .map_err(io::Error::other)?;
    }
    let mut out: Vec<u8> = Vec::with_capacity(job.data.len() / 2 + 1024);
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut input: &[u8] = &job.data;
    loop {
        if out.capacity() - out.len() < 64 * 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let before_in = compress.total_in();
        let status = compress
            .compress_vec(input, &mut out, flush)
            .map_err(io::Error::other)?;
        let consumed = (compress.total_in() - before_in) as usize;
        input = &input[consumed..];
        match status {
            Status::StreamEnd => break,
            // Sync flush is done when all input is taken and the output
            // buffer was not filled (zlib's rule for a completed flush).
            Status::Ok | Status::BufError
                if !job.last && input.is_empty() && out.len() < out.capacity() =>
            {
                break;
            }
            _ => {}
        }
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&job.data);
    Ok(Done {
        compressed: out,
        crc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn roundtrip(data: &[u8], threads: usize) {
        let mut w = ParallelGzWriter::new(Vec::new(), 6, threads);
        // Odd-sized writes cross block boundaries.
        for chunk in data.chunks(77_777) {
            w.write_all(chunk).expect("write");
        }
        let gz = w.finish().expect("finish");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .expect("one valid gzip stream");
        assert_eq!(out, data);
        // Nothing after the member: one stream, not several.
        let mut d = flate2::read::GzDecoder::new(&gz[..]);
        io::copy(&mut d, &mut io::sink()).expect("decode");
        assert!(d.into_inner().is_empty());
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 1;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3 == 0 {
                    (x >> 24) as u8
                } else {
                    b'a' + (i % 7) as u8
                }
            })
            .collect()
    }

    #[test]
    fn empty_input_is_a_valid_stream() {
        roundtrip(&[], 2);
    }

    #[test]
    fn several_blocks_decode_to_the_input() {
        roundtrip(&sample(3 * BLOCK_SIZE + 12_345), 3);
        roundtrip(&sample(BLOCK_SIZE), 1);
    }
}

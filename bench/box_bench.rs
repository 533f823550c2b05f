//! Driver for bench/box.sh: packs a libvirt box (box.img + metadata.json +
//! Vagrantfile) with kiln's parallel gzip, exactly as the vagrant
//! post-processor writes it.
//!
//!   box_bench DISK.qcow2 OUT.box [LEVEL] [THREADS-ignored]

use std::sync::Arc;
use std::time::SystemTime;

use kiln::postprocess::{Codec, Entry, Format, pack};
use kiln::ui::Progress;
use tokio_util::sync::CancellationToken;

struct Quiet;

impl Progress for Quiet {
    fn set_position(&self, _: u64) {}
    fn set_total(&self, _: u64) {}
    fn finish(&self, _: &str) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(disk), Some(out)) = (args.get(1), args.get(2)) else {
        return Err("usage: box_bench DISK OUT.box [LEVEL]".into());
    };
    let level: u32 = args.get(3).map_or(Ok(6), |l| l.parse())?;
    let entries = vec![
        Entry::File {
            name: "box.img".into(),
            path: disk.into(),
        },
        Entry::Bytes {
            name: "metadata.json".into(),
            data: br#"{"provider":"libvirt","format":"qcow2","virtual_size":2}"#.to_vec(),
        },
        Entry::Bytes {
            name: "Vagrantfile".into(),
            data: b"Vagrant.configure(\"2\") do |config|\nend\n".to_vec(),
        },
    ];
    let progress: Arc<dyn Progress> = Arc::new(Quiet);
    pack(
        &entries,
        std::path::Path::new(out),
        Format {
            tar: true,
            codec: Codec::Gzip,
        },
        level,
        SystemTime::now(),
        &CancellationToken::new(),
        &progress,
    )?;
    Ok(())
}

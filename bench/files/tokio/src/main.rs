// Tokio's tokio::fs peer of bench/files.c (current_thread runtime; tokio::fs runs each call on
// its blocking pool): files-tokio rand4k|seq1m DEPTH SECS FILE
use std::io::SeekFrom;
use std::rc::Rc;
use std::cell::Cell;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

async fn worker(path: Rc<String>, seed: u64, seq: bool, bs: u64, nblocks: u64,
                next: Rc<Cell<u64>>, end: Instant) -> u64 {
    let mut f = tokio::fs::File::open(path.as_str()).await.expect("open");
    let mut buf = vec![0u8; bs as usize];
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    let mut n = 0u64;
    loop {
        let blk = if seq {
            let b = next.get();
            next.set(if b + 1 == nblocks { 0 } else { b + 1 });
            b
        } else {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            x % nblocks
        };
        f.seek(SeekFrom::Start(blk * bs)).await.expect("seek");
        f.read_exact(&mut buf).await.expect("read");
        n += 1;
        if n & 15 == 0 && Instant::now() >= end { break; }
    }
    n
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let seq = a[1] == "seq1m";
    let depth: u64 = a[2].parse().unwrap();
    let secs: f64 = a[3].parse().unwrap();
    let path = Rc::new(a[4].clone());
    let bs: u64 = if seq { 1 << 20 } else { 4096 };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let size = tokio::fs::metadata(path.as_str()).await.unwrap().len();
        let nblocks = size / bs;
        let next = Rc::new(Cell::new(0u64));
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs_f64(secs);
        let mut hs = Vec::new();
        for i in 0..depth {
            hs.push(tokio::task::spawn_local(worker(path.clone(), i + 1, seq, bs, nblocks,
                                                    next.clone(), end)));
        }
        let mut ops = 0u64;
        for h in hs { ops += h.await.unwrap(); }
        let el = t0.elapsed().as_secs_f64();
        let iops = ops as f64 / el;
        println!("RESULT depth={} iops={:.0} mib_s={:.1}", depth, iops,
                 iops * bs as f64 / 1048576.0);
    });
}

//! Scorer cost on one core (docs/benchmarks.md): each CT scorer over 512×512 water-phantom
//! slices, and the full set, without file parsing. `cargo run --release -p huren-quality
//! --example throughput [slices]`.

use huren_quality::{Header, Pixels, SCORERS};
use std::time::Instant;

fn phantom(n: usize, seed: u64) -> Pixels {
    // A deterministic noise pattern (xorshift), so no random crate is needed here.
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1000) as f32 / 1000.0 - 0.5
    };
    let c = n as f32 / 2.0;
    let values = (0..n * n)
        .map(|i| {
            let (r, col) = ((i / n) as f32 - c, (i % n) as f32 - c);
            let base = if (r * r + col * col).sqrt() < 0.43 * n as f32 {
                40.0
            } else {
                -1000.0
            };
            base + 40.0 * next()
        })
        .collect();
    Pixels::new(n, n, values, (-32768.0, 32767.0), 1.0, 0.0)
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let images: Vec<Pixels> = (0..8).map(|s| phantom(512, s + 1)).collect();
    let h = Header {
        modality: "CT".into(),
        pixel_spacing: Some((0.7, 0.7)),
        slice_thickness: Some(1.25),
        ..Default::default()
    };
    let mut total = 0.0;
    for s in SCORERS.iter().filter(|s| s.modalities.contains(&"CT")) {
        let t = Instant::now();
        for k in 0..count {
            std::hint::black_box((s.score)(&h, Some(&images[k % images.len()])));
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / count as f64;
        total += ms;
        println!("{:<16} {ms:7.3} ms/slice", s.name);
    }
    println!(
        "{:<16} {total:7.3} ms/slice = {:.0} slices/s on one core",
        "all CT",
        1000.0 / total
    );
}

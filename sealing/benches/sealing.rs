//! Sealing and opening per MiB, against a plain copy of the same bytes in the same process.
//!
//! `cargo bench -p sigil-sealing`: the report's ratio of `seal/1MiB` (or `open`) to
//! `copy/1MiB` is the cost of confidential I/O per MiB of input or output.

// A bench: it may unwrap.
#![allow(clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sigil_sealing::{SealingKey, seal_output};

fn bench(c: &mut Criterion) {
    let job = [7u8; 32];
    let buyer = SealingKey::for_outputs(&[3; 32], &job);
    let data = vec![0x5Au8; 1 << 20];
    let sealed = seal_output(&buyer.public_key(), &job, 0, "out.bin", &data).expect("seal");
    let mut g = c.benchmark_group("io");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("copy/1MiB", |b| {
        b.iter(|| std::hint::black_box(data.clone()))
    });
    g.bench_function("seal/1MiB", |b| {
        b.iter(|| {
            seal_output(
                &buyer.public_key(),
                &job,
                0,
                "out.bin",
                std::hint::black_box(&data),
            )
            .expect("seal")
        })
    });
    g.bench_function("open/1MiB", |b| {
        b.iter(|| {
            buyer
                .open_output(std::hint::black_box(&sealed), &job, 0, "out.bin")
                .expect("open")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Criterion benches of the compute kernels at 10^6 elements: mse (mean, sum, weighted
//! mean, none) and cross_entropy (rows of 10, class-index targets), value and gradient,
//! as a /loss request computes them after parsing. `cargo bench --bench kernels`.

#![allow(clippy::unwrap_used)]
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use losslab::compute::{Array, LossKind, LossSpec, Params, Reduction};
use std::hint::black_box;

fn data(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 0.98 + 0.01
        })
        .collect()
}

fn kernels(c: &mut Criterion) {
    let n = 1_000_000;
    let mut g = c.benchmark_group("loss_1e6");
    // criterion's throughput counts the bytes each case must move: the arrays read
    // (predictions, targets, weights) and written (gradient; terms for `none`), 8 each
    let mb = |arrays: usize| Throughput::Bytes((arrays * n * 8) as u64);

    let a = Array::flat(data(n, 1));
    let y = Array::flat(data(n, 2));
    let mse = LossSpec::new(LossKind::Mse, &Params::default(), false).unwrap();
    g.throughput(mb(3));
    g.bench_function("mse value+gradient", |b| {
        b.iter(|| black_box(mse.evaluate(&a, &y, Reduction::Mean, None, true).unwrap()))
    });
    g.throughput(mb(2));
    g.bench_function("mse value", |b| {
        b.iter(|| black_box(mse.evaluate(&a, &y, Reduction::Mean, None, false).unwrap()))
    });
    g.throughput(mb(3));
    g.bench_function("mse value+gradient sum", |b| {
        b.iter(|| black_box(mse.evaluate(&a, &y, Reduction::Sum, None, true).unwrap()))
    });
    // one sample weight per element of a flat input: the weighted mean's denominator is Σ w
    let w = data(n, 4);
    g.throughput(mb(4));
    g.bench_function("mse value+gradient weighted", |b| {
        b.iter(|| {
            black_box(
                mse.evaluate(&a, &y, Reduction::Mean, Some(&w), true)
                    .unwrap(),
            )
        })
    });
    g.throughput(mb(4));
    g.bench_function("mse none+gradient", |b| {
        b.iter(|| black_box(mse.evaluate(&a, &y, Reduction::None, None, true).unwrap()))
    });

    let rows = n / 10;
    let mut p = data(n, 3);
    for row in p.chunks_exact_mut(10) {
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    let p = Array::matrix(p, rows, 10).unwrap();
    let t = Array::flat((0..rows).map(|i| (i % 10) as f64).collect());
    let ce = LossSpec::new(LossKind::CrossEntropy, &Params::default(), false).unwrap();
    // predictions, a tenth of their size in class indices, the gradient
    g.throughput(Throughput::Bytes((n * 8 * 2 + rows * 8) as u64));
    g.bench_function("cross_entropy rows of 10 value+gradient", |b| {
        b.iter(|| black_box(ce.evaluate(&p, &t, Reduction::Mean, None, true).unwrap()))
    });
    g.throughput(Throughput::Bytes((n * 8 + rows * 8) as u64));
    g.bench_function("cross_entropy rows of 10 value", |b| {
        b.iter(|| black_box(ce.evaluate(&p, &t, Reduction::Mean, None, false).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);

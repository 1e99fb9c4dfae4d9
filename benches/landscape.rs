//! The landscape grid alone (no HTTP, no JSON): grid points per second for the two cases
//! of BENCHMARKS.md — the textbook neuron and a 1,000-sample linear regression, each a
//! 500 × 500 grid over (w, b) — on one rayon thread and on every core; then, on every
//! core, the grid with its JSON rows printed in the same pass, as POST /landscape does.
//! `cargo bench --bench landscape [-- neuron|regression]`. The data match scripts/landscape-bench.py's bodies.

#![allow(clippy::unwrap_used)]
use losslab::compute::landscape::{self, AxisSpec, LandscapeLimits, LandscapeSpec};
use losslab::compute::train::{Init, Optimizer, StopRules, TrainSpec};
use losslab::compute::{Activation, Array, Cancel, LossKind, Params};
use std::time::{Duration, Instant};

fn spec(
    inputs: Array,
    targets: Array,
    act: Activation,
    loss: LossKind,
    x: (f64, f64),
    y: (f64, f64),
) -> LandscapeSpec {
    let axis = |p: &str, (from, to): (f64, f64)| AxisSpec {
        parameter: p.into(),
        from,
        to,
        steps: 500,
    };
    LandscapeSpec {
        train: TrainSpec {
            inputs,
            targets,
            activation: act,
            loss,
            params: Params::default(),
            init_weights: Some(Init::Number(0.0)),
            init_bias: Some(Init::Number(0.0)),
            use_bias: true,
            learning_rate: 1.0,
            optimizer: Optimizer::Sgd,
            batch_size: None,
            seed: None,
            max_iterations: 0,
            stop: StopRules::default(),
            trace_every: 0,
        },
        x: axis("/weights/0", x),
        y: axis("/bias", y),
        path: false,
    }
}

/// The textbook neuron: inputs [[1]], targets [0.5], sigmoid + l2.
fn neuron() -> LandscapeSpec {
    spec(
        Array::matrix(vec![1.0], 1, 1).unwrap(),
        Array::flat(vec![0.5]),
        Activation::Sigmoid,
        LossKind::L2,
        (-4.0, 6.0),
        (-5.0, 5.0),
    )
}

/// x_i = i/999·6 − 3, y_i = 2·x_i − 1 + ((7919·i mod 1000)/1000 − 0.5); identity + mse.
fn regression() -> LandscapeSpec {
    let xs: Vec<f64> = (0..1000).map(|i| i as f64 / 999.0 * 6.0 - 3.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .enumerate()
        .map(|(i, x)| 2.0 * x - 1.0 + (((7919 * i) % 1000) as f64 / 1000.0 - 0.5))
        .collect();
    spec(
        Array::flat(xs),
        Array::flat(ys),
        Activation::Identity,
        LossKind::Mse,
        (-1.0, 5.0),
        (-4.0, 2.0),
    )
}

/// The best of a few runs (the machine is shared: the minimum is the least disturbed).
fn best(make: fn() -> LandscapeSpec, runs: usize) -> Duration {
    (0..runs)
        .map(|_| {
            let p = landscape::prepare(make(), &LandscapeLimits::default()).unwrap();
            let t = Instant::now();
            let l = p.compute(&Cancel::none()).unwrap();
            let d = t.elapsed();
            assert_eq!(l.loss.len(), 250_000);
            d
        })
        .min()
        .unwrap()
}

/// The best of a few runs of the grid with its rows printed as the answer prints them.
fn best_printed(make: fn() -> LandscapeSpec, runs: usize) -> (Duration, usize) {
    (0..runs)
        .map(|_| {
            let p = landscape::prepare(make(), &LandscapeLimits::default()).unwrap();
            let nx = p.x().values.len();
            let t = Instant::now();
            let (l, rows) = p
                .compute_with(&Cancel::none(), |first, values| {
                    losslab::api::wire::landscape::grid_rows_json(first, values, nx)
                })
                .unwrap();
            let frames = losslab::api::wire::landscape::json_frames(&l, rows);
            let d = t.elapsed();
            (d, frames.iter().map(Vec::len).sum())
        })
        .min()
        .unwrap()
}

fn main() {
    // `cargo bench --bench landscape -- neuron` runs only the cases whose name has "neuron"
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let cores = rayon::current_num_threads();
    for (name, make, runs) in [
        (
            "textbook neuron 500x500",
            neuron as fn() -> LandscapeSpec,
            30,
        ),
        ("1000-sample regression 500x500", regression, 5),
    ] {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| best(make, runs));
        let all = best(make, runs);
        let rate = |d: Duration| 250_000.0 / d.as_secs_f64();
        println!(
            "{name}: 1 thread {:.2} ms ({:.3e} points/s), {cores} threads {:.2} ms ({:.3e} points/s) = {:.0}% of 1-thread speed x {cores}",
            one.as_secs_f64() * 1e3,
            rate(one),
            all.as_secs_f64() * 1e3,
            rate(all),
            100.0 * rate(all) / (rate(one) * cores as f64)
        );
        let (printed, bytes) = best_printed(make, runs);
        println!(
            "{name}: with the JSON rows printed in the same pass, {cores} threads {:.2} ms ({bytes} bytes)",
            printed.as_secs_f64() * 1e3
        );
    }
}

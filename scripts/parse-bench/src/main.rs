//! serde_json (float_roundtrip) vs sonic-rs on one JSON body: median parse time of 7 runs
//! each (alternating), and exactness of every number against `str::parse::<f64>`.

use std::time::Instant;

#[derive(serde::Deserialize)]
struct Body {
    predictions: Vec<f64>,
    targets: Vec<f64>,
}

fn exact_numbers(text: &str) -> Vec<f64> {
    // every number token of the arrays, parsed by Rust's correctly rounded parser
    text.split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace() || c == ':')
        .filter(|t| t.starts_with(|c: char| c == '-' || c.is_ascii_digit()))
        .map(|t| t.parse().expect("number"))
        .collect()
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: parse-bench BODY.json");
    let bytes = std::fs::read(&path).expect("read body");
    let text = std::str::from_utf8(&bytes).expect("utf-8");
    let want = exact_numbers(text);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut wrong = [0usize; 2];
    for round in 0..7 {
        let t = Instant::now();
        let x: Body = serde_json::from_slice(&bytes).expect("serde_json");
        a.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let y: Body = sonic_rs::from_slice(&bytes).expect("sonic-rs");
        b.push(t.elapsed().as_secs_f64());
        if round == 0 {
            for (i, body) in [x, y].iter().enumerate() {
                let got = body.predictions.iter().chain(&body.targets);
                wrong[i] = got
                    .zip(&want)
                    .filter(|(g, w)| g.to_bits() != w.to_bits())
                    .count();
            }
        }
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let mb = bytes.len() as f64 / 1e6;
    println!("body: {mb:.1} MB, {} numbers", want.len());
    println!(
        "serde_json float_roundtrip: median {:.1} ms ({:.0} MB/s), {} numbers not the nearest f64",
        a[3] * 1e3,
        mb / a[3],
        wrong[0]
    );
    println!(
        "sonic-rs:                   median {:.1} ms ({:.0} MB/s), {} numbers not the nearest f64",
        b[3] * 1e3,
        mb / b[3],
        wrong[1]
    );
}

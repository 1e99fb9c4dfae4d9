//! The in-process cost of one request through the whole service — router, layer stack,
//! extractor, parse, compute, serialisation — without sockets or the kernel: what our
//! code adds to each small request. `cargo bench --bench stack`.

#![allow(clippy::unwrap_used)]
use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use losslab::{AppState, Config, app};
use tower::ServiceExt;

const MSE: &str =
    r#"{"predictions":[0.9,0.2,0.75,0.4,1.3],"targets":[1.0,0.0,1.0,0.5,1.0],"reduction":"mean"}"#;

fn stack(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = app(AppState::new(Config::default()));
    let mut g = c.benchmark_group("request");
    g.bench_function("POST /loss/mse, 5 elements", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = Request::post("/loss/mse")
                    .header("content-type", "application/json")
                    .header("content-length", MSE.len())
                    .body(Body::from(MSE))
                    .unwrap();
                let res = app.clone().oneshot(req).await.unwrap();
                assert_eq!(res.status(), 200);
                res.into_body().collect().await.unwrap().to_bytes()
            })
        })
    });
    g.bench_function("GET /healthz", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = Request::get("/healthz").body(Body::empty()).unwrap();
                let res = app.clone().oneshot(req).await.unwrap();
                assert_eq!(res.status(), 200);
                res.into_body().collect().await.unwrap().to_bytes()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, stack);
criterion_main!(benches);

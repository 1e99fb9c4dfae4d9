//! The harness of the fuzz targets (harness.rs, shared with the stable proptest in
//! tests/it) and the runtime they drive the app on.

pub mod harness;

use std::sync::OnceLock;

/// One case through the app on a current-thread runtime (made once); a broken property
/// is a panic, which libFuzzer reports with the input.
pub fn fuzz_one(data: &[u8], structured: bool) {
    static RT: OnceLock<(tokio::runtime::Runtime, harness::App)> = OnceLock::new();
    let (rt, app) = RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let app = rt.block_on(async { harness::service() });
        (rt, app)
    });
    let case = harness::case(data, structured);
    if let Err(e) = rt.block_on(harness::run(app, &case)) {
        panic!("{} {} ({:?}): {e}", case.method, case.path, case.encoding);
    }
}

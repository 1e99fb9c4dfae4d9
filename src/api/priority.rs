//! The CPU priority of heavy work. A thread that runs a heavy computation (the blocking
//! pool under the heavy-work limit, and rayon's pool that /landscape spreads its grid
//! over) lowers its own scheduling priority to nice [`HEAVY_NICE`] before it starts, so
//! the async workers — which answer /healthz, /readyz and every small request — come
//! first when the cores are busy. Heavy work still gets the CPU the workers leave, and
//! about a tenth of a core each while they are saturated (the kernel's weight of nice 10
//! against nice 0 is 110 to 1024), so a long /train goes on rather than stalls.
//!
//! Linux only (`setpriority` on the thread's id; elsewhere this does nothing). An
//! unprivileged process cannot raise a priority again, so a blocking-pool thread stays
//! at the lower priority once it has run heavy work; the blocking pool's other jobs
//! (gunzip of large bodies, waiting for a stream's client) are background work too.
//! A failure (a sandbox that forbids the call) is logged once and changes nothing else.

use std::cell::Cell;

/// The nice value of threads that run heavy computations (the async workers keep the
/// process's own, normally 0).
pub const HEAVY_NICE: i32 = 10;

thread_local! {
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Lowers the calling thread to nice [`HEAVY_NICE`] (if its nice is lower); once per
/// thread — later calls on the same thread are a thread-local read.
pub fn lower_this_thread() {
    if LOWERED.with(|l| l.replace(true)) {
        return;
    }
    if let Err(e) = set_this_thread_nice(HEAVY_NICE) {
        static LOGGED: std::sync::Once = std::sync::Once::new();
        LOGGED.call_once(|| {
            tracing::warn!("cannot lower the CPU priority of heavy work: {e}");
        });
    }
}

/// Builds rayon's global pool (one worker per core, as its default) with threads that
/// lower themselves at start; call before anything uses rayon. `false` if the pool was
/// already built (its threads keep their priority).
pub fn lower_rayon_pool() -> bool {
    rayon::ThreadPoolBuilder::new()
        .start_handler(|_| lower_this_thread())
        .build_global()
        .is_ok()
}

/// The calling thread's nice value (`None` where threads have none we can read).
pub fn this_thread_nice() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(target_os = "linux")]
fn set_this_thread_nice(nice: i32) -> std::io::Result<()> {
    use rustix::process::{getpriority_process, setpriority_process};
    // on Linux PRIO_PROCESS with a thread id sets that thread alone
    let tid = Some(rustix::thread::gettid());
    if getpriority_process(tid)? < nice {
        setpriority_process(tid, nice)?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_this_thread_nice(_nice: i32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers_only_the_calling_thread() {
        let outside = this_thread_nice();
        let inside = std::thread::spawn(|| {
            let before = this_thread_nice();
            lower_this_thread();
            lower_this_thread(); // once is enough; the second is a no-op
            (before, this_thread_nice())
        })
        .join()
        .expect("thread");
        if cfg!(target_os = "linux") {
            let (before, after) = inside;
            let before = before.expect("nice readable on Linux");
            assert_eq!(after, Some(before.max(HEAVY_NICE)));
            // this thread is untouched
            assert_eq!(this_thread_nice(), outside);
        } else {
            assert_eq!(inside, (None, None));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn heavy_work_runs_lowered_and_small_work_does_not() {
        use crate::api::{AppState, Config};
        let state = AppState::new(Config::default());
        let heavy = state
            .compute(true, |_| Ok(this_thread_nice()))
            .await
            .expect("heavy");
        let small = state
            .compute(false, |_| Ok(this_thread_nice()))
            .await
            .expect("small");
        if cfg!(target_os = "linux") {
            let worker = small.expect("nice readable on Linux");
            assert_eq!(heavy, Some(worker.max(HEAVY_NICE)));
            // small work runs where it was asked for, at that thread's priority
            assert_eq!(small, this_thread_nice());
        }
    }
}

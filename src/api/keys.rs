//! API keys (API.md, "API keys (a class server)"): the keys file, who a request comes
//! from, and each key's own limits. Owns the file format, the Bearer check, the per-key
//! token bucket and heavy-work slots, reload, and `losslab keys new`.
//!
//! The file is TOML, one `[[key]]` table a key:
//! ```toml
//! [[key]]
//! name = "ada"                 # shown in the log, never the key
//! sha256 = "9f86d0…"           # hex of SHA-256(key); the key itself is never stored
//! rate_limit_per_key = 5       # optional: overrides --rate-limit-per-key
//! max_concurrency_per_key = 1  # optional: overrides --max-concurrency-per-key
//! ```
//! A presented key is hashed and its digest compared with every digest of the file in
//! constant time (`subtle`), all of them, so neither the time nor the path taken says how
//! much of a digest matched.
//!
//! Each key has its own token bucket (`governor`'s GCRA: `rate` per second, bursts of
//! `rate`) and its own semaphore of heavy-computation slots, made when the file is read
//! and carried over by a reload for a key whose name and limit are unchanged — a reload
//! neither refills a bucket nor frees a busy slot. (One bucket per key rather than
//! governor's keyed limiter: a key may override the rate, and a keyed limiter has one.)

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::problem::ApiError;

/// The paths of the API operations, which need a key when keys are configured (the
/// health and readiness probes, metrics, version, the spec, the docs and the playground
/// stay open). `/losses` and `/train/examples` fall under their prefixes.
pub const GUARDED: &[&str] = &[
    "/loss",
    "/gradient",
    "/train",
    "/grade",
    "/landscape",
    "/losses",
];

/// Whether `path` is (under) one of the [`GUARDED`] operations: `/loss/mse`, `/train`,
/// `/train/examples`, but not `/lossy` or `/training`.
pub fn is_guarded(path: &str) -> bool {
    GUARDED.iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = "Bearer realm=\"losslab\"";

type Bucket = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    DefaultClock,
    governor::middleware::NoOpMiddleware,
>;

/// One key of the file: its name, its digest, and its limits.
pub struct Caller {
    /// Shown in the log and the 429s; never the key.
    pub name: Arc<str>,
    digest: [u8; 32],
    /// Requests per second (0 = no limit) and the bucket that keeps it.
    rate: u32,
    bucket: Option<Arc<Bucket>>,
    /// Heavy computations at once (0 = no limit) and their slots.
    concurrency: usize,
    slots: Option<Arc<Semaphore>>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("name", &self.name)
            .field("rate", &self.rate)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// A request from this key may go on, or 429 with the seconds until the bucket holds
    /// a token again.
    pub fn check_rate(&self) -> Result<(), ApiError> {
        let Some(bucket) = &self.bucket else {
            return Ok(());
        };
        bucket.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::TooMany(
                format!(
                    "key {:?} is limited to {} requests per second; retry after {} s",
                    self.name,
                    self.rate,
                    secs.max(1)
                ),
                secs.max(1),
            )
        })
    }

    /// A heavy-computation slot of this key, or 429 when all of them are busy: a key's
    /// further heavy requests are refused rather than queued, so one student's loop
    /// holds at most this many of the server's slots and its queue.
    pub fn heavy_slot(&self) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        let Some(slots) = &self.slots else {
            return Ok(None);
        };
        slots.clone().try_acquire_owned().map(Some).map_err(|_| {
            ApiError::TooMany(
                format!(
                    "key {:?} already has {} heavy computation{} running (its limit); retry when {} done",
                    self.name,
                    self.concurrency,
                    if self.concurrency == 1 { "" } else { "s" },
                    if self.concurrency == 1 { "it is" } else { "one is" },
                ),
                1,
            )
        })
    }
}

tokio::task_local! {
    /// The key of the request being served, set by the auth layer around the whole
    /// request (edge.rs), read where heavy work takes its slot (state.rs).
    static CALLER: Arc<Caller>;
}

/// Runs `fut` as a request of `caller`.
pub fn scope<F: std::future::Future>(
    caller: Arc<Caller>,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<Arc<Caller>, F> {
    CALLER.scope(caller, fut)
}

/// The key of the request being served, if keys are configured.
pub fn current() -> Option<Arc<Caller>> {
    CALLER.try_with(Arc::clone).ok()
}

/// Declares the bearer scheme in the spec, on the operations [`GUARDED`] names, as
/// optional (`[{"bearer": []}, {}]`): a server runs with or without keys, and says which
/// by answering 401. Done on the collected document, so one list of paths serves the
/// check and the spec.
pub fn declare_bearer(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    let scheme = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some(
            "An API key from the server's keys file (--api-keys-file), sent as \
             `Authorization: Bearer <key>`. Needed only when the server has keys: it then \
             answers 401 without a known key, and 429 past the key's own limits.",
        ))
        .build();
    api.components
        .get_or_insert_with(Default::default)
        .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    let unauthorized = problem_response(
        "No known API key (only when the server has keys); the WWW-Authenticate header \
         names the scheme",
        Some(("WWW-Authenticate", "Bearer realm=\"losslab\"")),
    );
    for (path, item) in api.paths.paths.iter_mut() {
        if !is_guarded(path) {
            continue;
        }
        for op in [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            op.security = Some(vec![
                SecurityRequirement::new("bearer", Vec::<String>::new()),
                SecurityRequirement::default(),
            ]);
            op.responses
                .responses
                .entry("401".into())
                .or_insert_with(|| unauthorized.clone());
        }
    }
}

/// A problem+json response of the spec, with one documented header.
pub fn problem_response(
    description: &str,
    header: Option<(&str, &str)>,
) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};
    let mut b = ResponseBuilder::new().description(description).content(
        super::problem::PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if let Some((name, what)) = header {
        b = b.header(
            name,
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some(what))
                .build(),
        );
    }
    b.build().into()
}

/// The `[[key]]` tables of a keys file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    key: Vec<KeyTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyTable {
    name: String,
    sha256: String,
    rate_limit_per_key: Option<u32>,
    max_concurrency_per_key: Option<usize>,
}

/// The limits a key has when its table does not say: the flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct Defaults {
    /// `--rate-limit-per-key` (0 = off).
    pub rate_limit_per_key: u32,
    /// `--max-concurrency-per-key` (0 = off).
    pub max_concurrency_per_key: usize,
}

/// The keys of the file as last read well, and where to read it again.
pub struct KeyStore {
    path: PathBuf,
    defaults: Defaults,
    keys: RwLock<Arc<Vec<Arc<Caller>>>>,
}

impl KeyStore {
    /// Reads the keys file; an error says what is wrong and where.
    pub fn load(path: &Path, defaults: Defaults) -> Result<Self, String> {
        let keys = read(path, defaults, &[])?;
        Ok(KeyStore {
            path: path.to_path_buf(),
            defaults,
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    /// A store of no keys (every API operation answers 401) that a reload may fill.
    pub fn empty(path: &Path, defaults: Defaults) -> Self {
        KeyStore {
            path: path.to_path_buf(),
            defaults,
            keys: RwLock::new(Arc::new(Vec::new())),
        }
    }

    /// Reads the file again (SIGHUP). On success the new keys apply to the next request
    /// and the number of keys is returned; on error the keys in use are kept.
    pub fn reload(&self) -> Result<usize, String> {
        let old = self.snapshot();
        let keys = read(&self.path, self.defaults, &old)?;
        let n = keys.len();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        Ok(n)
    }

    /// The number of keys in use.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// Whether the file holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys file this set was read from (and is reloaded from on SIGHUP).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Caller>>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The key an `Authorization` header presents, if it is one of the file's; else a
    /// 401 saying what was missing.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Arc<Caller>, ApiError> {
        let token = bearer_token(authorization).ok_or_else(|| {
            ApiError::Unauthorized(
                "this server needs an API key: send Authorization: Bearer <key>".into(),
            )
        })?;
        let digest: [u8; 32] = Sha256::digest(token).into();
        let keys = self.snapshot();
        // every digest is compared, in constant time, whatever matched before
        let mut found: Option<&Arc<Caller>> = None;
        for caller in keys.iter() {
            if bool::from(caller.digest.ct_eq(&digest)) {
                found = Some(caller);
            }
        }
        found
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("the API key is not known to this server".into()))
    }
}

/// The token of `Bearer <token>` (the scheme in any case, RFC 9110 §11.1).
fn bearer_token(header: Option<&[u8]>) -> Option<&[u8]> {
    let h = header?;
    let (scheme, rest) = (h.get(..7)?, &h[7..]);
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Reads and checks a keys file; buckets and slots of `old` keys whose name and limit
/// are unchanged are carried over.
fn read(path: &Path, defaults: Defaults, old: &[Arc<Caller>]) -> Result<Vec<Arc<Caller>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the keys file {}: {e}", path.display()))?;
    parse(&text, defaults, old).map_err(|e| format!("keys file {}: {e}", path.display()))
}

fn parse(text: &str, defaults: Defaults, old: &[Arc<Caller>]) -> Result<Vec<Arc<Caller>>, String> {
    let file: KeyFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut keys: Vec<Arc<Caller>> = Vec::with_capacity(file.key.len());
    for (i, t) in file.key.into_iter().enumerate() {
        let at = format!("key {} ({:?})", i + 1, t.name);
        if t.name.trim().is_empty() {
            return Err(format!("key {}: `name` is empty", i + 1));
        }
        let digest = parse_hex_digest(&t.sha256).ok_or_else(|| {
            format!("{at}: `sha256` must be 64 hex digits (the SHA-256 of the key)")
        })?;
        if let Some(other) = keys.iter().find(|k| *k.name == *t.name) {
            return Err(format!("{at}: the name {:?} is used twice", other.name));
        }
        if keys.iter().any(|k| k.digest == digest) {
            return Err(format!("{at}: the same key (sha256) is listed twice"));
        }
        let rate = t.rate_limit_per_key.unwrap_or(defaults.rate_limit_per_key);
        let concurrency = t
            .max_concurrency_per_key
            .unwrap_or(defaults.max_concurrency_per_key);
        let before = old.iter().find(|k| *k.name == *t.name);
        let bucket = match (NonZeroU32::new(rate), before) {
            (None, _) => None,
            (Some(_), Some(b)) if b.rate == rate => b.bucket.clone(),
            (Some(r), _) => Some(Arc::new(RateLimiter::direct(Quota::per_second(r)))),
        };
        let slots = match (concurrency, before) {
            (0, _) => None,
            (_, Some(b)) if b.concurrency == concurrency => b.slots.clone(),
            (n, _) => Some(Arc::new(Semaphore::new(n))),
        };
        keys.push(Arc::new(Caller {
            name: t.name.into(),
            digest,
            rate,
            bucket,
            concurrency,
            slots,
        }));
    }
    Ok(keys)
}

fn parse_hex_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(hex.chunks(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// The lowercase hex of SHA-256(`key`), as the keys file holds it.
pub fn digest_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh key: 192 bits from the operating system's random source, URL-safe base64
/// without padding (32 characters).
pub fn new_key() -> Result<String, String> {
    use base64::Engine;
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes from the OS: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What `losslab keys new NAME` prints: the key (to hand to its owner) and the table to
/// append to the keys file.
pub fn new_key_text(name: &str) -> Result<String, String> {
    if name.trim().is_empty() || name.contains(['"', '\\', '\n', '\r']) {
        return Err("the name must be non-empty, without quotes, backslashes or newlines".into());
    }
    let key = new_key()?;
    Ok(format!(
        "# the key for {name} (give it to them; it is not stored anywhere):\n\
         # {key}\n\
         # append to the keys file, then reload the server (SIGHUP):\n\
         [[key]]\n\
         name = \"{name}\"\n\
         sha256 = \"{}\"\n",
        digest_hex(&key)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[(&str, &str)]) -> String {
        entries
            .iter()
            .map(|(name, key)| {
                format!("[[key]]\nname = {name:?}\nsha256 = {:?}\n", digest_hex(key))
            })
            .collect()
    }

    fn store(text: &str, defaults: Defaults) -> (KeyStore, tempfile_path::TempPath) {
        let path = tempfile_path::TempPath::new(text);
        (KeyStore::load(path.path(), defaults).unwrap(), path)
    }

    /// A file under the system temp dir, removed on drop (no crate needed).
    mod tempfile_path {
        pub struct TempPath(std::path::PathBuf);
        impl TempPath {
            pub fn new(text: &str) -> Self {
                use std::sync::atomic::{AtomicU64, Ordering};
                static N: AtomicU64 = AtomicU64::new(0);
                let p = std::env::temp_dir().join(format!(
                    "losslab-keys-{}-{}.toml",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::write(&p, text).unwrap();
                TempPath(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
            pub fn write(&self, text: &str) {
                std::fs::write(&self.0, text).unwrap();
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn a_known_key_names_its_caller_and_anything_else_is_401() {
        let (keys, _f) = store(
            &file(&[("ada", "k-ada"), ("bob", "k-bob")]),
            Defaults::default(),
        );
        let who = |h: &[u8]| keys.authenticate(Some(h)).map(|c| c.name.to_string());
        assert_eq!(who(b"Bearer k-ada").unwrap(), "ada");
        assert_eq!(who(b"bearer  k-bob ").unwrap(), "bob");
        for bad in [
            &b"Bearer k-eve"[..],
            b"Bearer ",
            b"Basic k-ada",
            b"k-ada",
            b"Bearer k-ad",
        ] {
            assert!(matches!(
                keys.authenticate(Some(bad)),
                Err(ApiError::Unauthorized(_))
            ));
        }
        assert!(matches!(
            keys.authenticate(None),
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[test]
    fn guarded_paths_are_the_api_operations_only() {
        for p in [
            "/loss/mse",
            "/loss",
            "/gradient",
            "/train",
            "/train/examples",
            "/grade",
            "/landscape",
            "/losses",
        ] {
            assert!(is_guarded(p), "{p}");
        }
        for p in [
            "/",
            "/healthz",
            "/readyz",
            "/version",
            "/metrics",
            "/openapi.json",
            "/docs/",
            "/static/app.js",
            "/lossy",
            "/training",
        ] {
            assert!(!is_guarded(p), "{p}");
        }
    }

    #[test]
    fn files_with_mistakes_are_refused_with_a_reason() {
        let d = Defaults::default();
        let digest = digest_hex("k");
        let cases = [
            ("[[key]]\nname = \"a\"\n", "missing field `sha256`"),
            ("[[key]]\nname = \"a\"\nsha256 = \"abc\"\n", "64 hex digits"),
            (
                &*format!("[[key]]\nname = \"\"\nsha256 = \"{digest}\"\n"),
                "`name` is empty",
            ),
            (
                &*format!(
                    "[[key]]\nname = \"a\"\nsha256 = \"{digest}\"\n[[key]]\nname = \"a\"\nsha256 = \"{}\"\n",
                    digest_hex("j")
                ),
                "used twice",
            ),
            (
                &*format!(
                    "[[key]]\nname = \"a\"\nsha256 = \"{digest}\"\n[[key]]\nname = \"b\"\nsha256 = \"{digest}\"\n"
                ),
                "listed twice",
            ),
            (
                &*format!("[[key]]\nname = \"a\"\nsha256 = \"{digest}\"\nrole = \"admin\"\n"),
                "unknown field `role`",
            ),
            ("[[key]\n", "TOML"),
        ];
        for (text, want) in cases {
            let err = parse(text, d, &[]).unwrap_err();
            assert!(
                err.contains(want) || (want == "TOML" && !err.is_empty()),
                "{text:?}: {err}"
            );
        }
        assert_eq!(parse("", d, &[]).unwrap().len(), 0);
    }

    #[test]
    fn a_reload_with_a_bad_file_keeps_the_old_keys_and_a_good_one_replaces_them() {
        let (keys, f) = store(&file(&[("ada", "k-ada")]), Defaults::default());
        f.write("[[key]]\nname = \"ada\"\nsha256 = \"nope\"\n");
        let err = keys.reload().unwrap_err();
        assert!(err.contains("64 hex digits"), "{err}");
        assert_eq!(
            keys.authenticate(Some(b"Bearer k-ada"))
                .unwrap()
                .name
                .as_ref(),
            "ada"
        );
        f.write(&file(&[("bob", "k-bob")]));
        assert_eq!(keys.reload(), Ok(1));
        assert!(
            keys.authenticate(Some(b"Bearer k-ada")).is_err(),
            "ada's key was revoked"
        );
        assert_eq!(
            keys.authenticate(Some(b"Bearer k-bob"))
                .unwrap()
                .name
                .as_ref(),
            "bob"
        );
    }

    #[test]
    fn per_key_limits_come_from_the_table_or_the_flags_and_survive_a_reload() {
        let defaults = Defaults {
            rate_limit_per_key: 2,
            max_concurrency_per_key: 1,
        };
        let text = format!(
            "{}[[key]]\nname = \"bob\"\nsha256 = {:?}\nrate_limit_per_key = 0\nmax_concurrency_per_key = 2\n",
            file(&[("ada", "k-ada")]),
            digest_hex("k-bob")
        );
        let (keys, f) = store(&text, defaults);
        let ada = keys.authenticate(Some(b"Bearer k-ada")).unwrap();
        assert!(ada.check_rate().is_ok() && ada.check_rate().is_ok());
        match ada.check_rate() {
            Err(ApiError::TooMany(detail, secs)) => {
                assert_eq!(secs, 1);
                assert!(
                    detail.contains("\"ada\" is limited to 2 requests per second"),
                    "{detail}"
                );
            }
            other => panic!("expected 429, got {other:?}"),
        }
        let held = ada.heavy_slot().unwrap();
        assert!(held.is_some());
        assert!(matches!(ada.heavy_slot(), Err(ApiError::TooMany(_, 1))));
        let bob = keys.authenticate(Some(b"Bearer k-bob")).unwrap();
        for _ in 0..100 {
            assert!(bob.check_rate().is_ok(), "rate 0 in the table: no limit");
        }
        let (b1, b2) = (bob.heavy_slot().unwrap(), bob.heavy_slot().unwrap());
        assert!(b1.is_some() && b2.is_some() && bob.heavy_slot().is_err());
        // the same file again: ada's empty bucket and busy slot carry over
        f.write(&text);
        keys.reload().unwrap();
        let ada = keys.authenticate(Some(b"Bearer k-ada")).unwrap();
        assert!(ada.check_rate().is_err() && ada.heavy_slot().is_err());
        drop(held);
        assert!(ada.heavy_slot().unwrap().is_some());
    }

    #[test]
    fn new_keys_are_fresh_url_safe_and_at_least_128_bits() {
        let a = new_key().unwrap();
        let b = new_key().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32, "24 random bytes");
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{a}"
        );
        let text = new_key_text("ada").unwrap();
        let key = text.lines().nth(1).unwrap().trim_start_matches("# ");
        let table: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let keys = parse(&table, Defaults::default(), &[]).unwrap();
        assert_eq!(keys.len(), 1);
        let (store, _f) = store(&table, Defaults::default());
        assert_eq!(
            store
                .authenticate(Some(format!("Bearer {key}").as_bytes()))
                .unwrap()
                .name
                .as_ref(),
            "ada"
        );
        assert!(new_key_text("a\"b").is_err() && new_key_text(" ").is_err());
    }
}

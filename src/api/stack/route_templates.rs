//! The route label of the metrics, found outside the router: matchit (the matcher axum's
//! router uses) over the router's own path templates. Part of the speed-only stack
//! (mod.rs): the plain equivalent is axum's `MatchedPath`, which exists only inside the
//! router.

use std::sync::Arc;

/// The route templates of the router ("/loss/{kind}"), to label a request by the one its
/// path matches. The metrics are taken outside the router (app.rs puts the whole layer
/// stack around it, so a request does not pay for the stack once per route), where axum's
/// `MatchedPath` is not yet known: the same matcher axum uses (matchit) over the same
/// templates gives the same answer — a test in app.rs checks it path by path. (The
/// router's static route of each known kind, `/loss/mse`, is not among them: such a
/// request is labelled `/loss/{kind}`, as every loss request is.)
pub struct RouteTemplates(matchit::Router<Arc<str>>);

impl RouteTemplates {
    /// The matcher over `templates` (the router's path templates).
    pub fn new<T: AsRef<str>>(templates: impl IntoIterator<Item = T>) -> Self {
        let mut router = matchit::Router::new();
        for t in templates {
            let t = t.as_ref();
            // distinct templates axum's router already accepted with this same matcher:
            // inserting cannot fail (app.rs's test compares every label with axum's)
            let _ = router.insert(t, Arc::from(t));
        }
        RouteTemplates(router)
    }

    /// The template `path` matches, or None (the request is "unmatched").
    pub fn of(&self, path: &str) -> Option<Arc<str>> {
        self.0.at(path).ok().map(|m| m.value.clone())
    }
}

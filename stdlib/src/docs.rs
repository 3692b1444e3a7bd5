//! Documentation of every function the stdlib exports, collected as they are registered, so
//! that each example can be run by the tests and printed by `cairn docs`.

use rhai::Engine;

/// One exported function: its name, parameters and documentation (with a ```rhai example).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDoc {
    /// The function's name.
    pub name: &'static str,
    /// Its parameters as `name: Type`.
    pub params: &'static [&'static str],
    /// Markdown documentation including a ```rhai example.
    pub doc: &'static str,
}

impl FunctionDoc {
    /// Whether the function matches a search: every word of `query` is in its name, its
    /// parameters or its documentation (case-insensitive), so that `cairn docs webhook` finds
    /// `slack` and `alert_route` too.
    pub fn matches(&self, query: &str) -> bool {
        let text = format!("{} {} {}", self.name, self.params.join(" "), self.doc).to_lowercase();
        query
            .split_whitespace()
            .all(|word| text.contains(&word.to_lowercase()))
    }

    /// The option keys the function reads from its options map, when the stdlib lists them
    /// (each must be named in the documentation as `` `key` ``).
    pub fn options(&self) -> &'static [&'static str] {
        let map = self.params.last().is_some_and(|p| p.ends_with(": Map"));
        match (self.name, map) {
            ("deployment", true) => crate::workloads::DEPLOYMENT_KEYS,
            ("statefulset", true) => crate::workloads::STATEFULSET_KEYS,
            ("job", true) => crate::workloads::JOB_KEYS,
            ("cronjob", true) => crate::workloads::CRONJOB_KEYS,
            ("namespace", true) => crate::workloads::NAMESPACE_KEYS,
            ("slack", true) => crate::network::SLACK_KEYS,
            ("email", true) => crate::network::EMAIL_KEYS,
            ("webhook", true) => crate::network::WEBHOOK_KEYS,
            ("scrape", true) => crate::network::SCRAPE_KEYS,
            ("service_account", true) => &["read"],
            _ => &[],
        }
    }

    /// The example scripts in the documentation.
    pub fn examples(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut current: Option<String> = None;
        for line in self.doc.lines() {
            let trimmed = line.trim();
            match (&mut current, trimmed) {
                (None, "```rhai") => current = Some(String::new()),
                (Some(_), "```") => out.extend(current.take()),
                (Some(text), _) => {
                    text.push_str(line.strip_prefix("    ").unwrap_or(line));
                    text.push('\n');
                }
                (None, _) => {}
            }
        }
        out
    }
}

/// Every function the stdlib exports, sorted by name.
pub fn function_docs() -> Vec<FunctionDoc> {
    let mut docs = Docs::default();
    let mut engine = Engine::new_raw();
    crate::api::register_all(&mut engine, &mut docs, &crate::api::Ctx::detached());
    let mut all = docs.0;
    all.sort_by(|a, b| (a.name, a.params).cmp(&(b.name, b.params)));
    all
}

/// Collects documentation while functions are registered.
#[derive(Debug, Default)]
pub struct Docs(pub Vec<FunctionDoc>);

/// Registers a documented native function.
#[macro_export]
macro_rules! export {
    ($engine:expr, $docs:expr, $name:literal, [$($param:literal),*], $doc:expr, $func:expr) => {{
        const PARAMS: &[&str] = &[$($param),*];
        rhai::FuncRegistration::new($name)
            .with_params_info(PARAMS)
            .with_comments([$doc])
            .register_into_engine($engine, $func);
        $docs.0.push($crate::docs::FunctionDoc { name: $name, params: PARAMS, doc: $doc });
    }};
}

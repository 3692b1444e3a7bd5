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

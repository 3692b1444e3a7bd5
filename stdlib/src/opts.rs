//! Reading the option maps (`#{ image: ..., replicas: ... }`) that stdlib functions take,
//! with a diagnostic for every wrong type, missing key and unknown key.

use cairn_model::Code;
use cairn_model::{Diagnostic, Span};
use rhai::{Dynamic, Map};

use crate::sources::Sources;

/// Where a call happened: used to point diagnostics at the call or at a literal inside it.
#[derive(Debug, Clone)]
pub struct Site {
    /// The call itself (in a plugin, when a plugin made it).
    pub span: Option<Span>,
    /// When the call is made inside a plugin: the script's call that led there.
    pub caller: Option<Span>,
    pub sources: Sources,
}

impl Site {
    /// The span of `literal` inside the call, or inside the script's call that led to it, or
    /// the call itself.
    pub fn at(&self, literal: &str) -> Option<Span> {
        if let Some(caller) = &self.caller {
            let inside = self.sources.narrow(self.span.clone(), literal);
            if inside != self.span {
                return inside;
            }
            return self.sources.narrow(Some(caller.clone()), literal);
        }
        self.sources.narrow(self.span.clone(), literal)
    }

    /// Where a declaration is attributed: the script's call (for resources made by plugins)
    /// or the call itself.
    pub fn primary(&self) -> Option<Span> {
        self.caller.clone().or_else(|| self.span.clone())
    }

    /// An error diagnostic at the literal (or the call).
    pub fn error(&self, code: Code, literal: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, message).at(self.at(literal))
    }
}

/// An option map being read.
pub struct Opts {
    what: String,
    map: Map,
    known: &'static [&'static str],
    site: Site,
    pub diagnostics: Vec<Diagnostic>,
}

impl Opts {
    /// Starts reading `map`, the options of `what` (for messages), which may hold `known` keys.
    pub fn new(
        what: impl Into<String>,
        map: Map,
        known: &'static [&'static str],
        site: &Site,
    ) -> Self {
        Self {
            what: what.into(),
            map,
            known,
            site: site.clone(),
            diagnostics: Vec::new(),
        }
    }

    fn wrong_type(&mut self, key: &str, expected: &str, got: &Dynamic) {
        let d = Diagnostic::error(
            Code::InvalidOption,
            format!(
                "option `{key}` of {} must be {expected}, found {}",
                self.what,
                crate::types::script_type(got)
            ),
        )
        .at(self.site.at(key));
        self.diagnostics.push(d);
    }

    /// The raw value of `key`, if present and not `()`.
    pub fn get(&self, key: &str) -> Option<Dynamic> {
        self.map.get(key).filter(|v| !v.is_unit()).cloned()
    }

    /// A string option.
    pub fn str(&mut self, key: &str) -> Option<String> {
        let v = self.get(key)?;
        if v.is_string() {
            return Some(v.to_string());
        }
        if v.is_int() || v.is_float() {
            return Some(v.to_string());
        }
        self.wrong_type(key, "a string", &v);
        None
    }

    /// A required string option.
    pub fn req_str(&mut self, key: &str) -> Option<String> {
        let v = self.str(key);
        if v.is_none() && self.get(key).is_none() {
            let d = Diagnostic::error(
                Code::MissingOption,
                format!("{} needs the option `{key}`", self.what),
            )
            .at(self.site.span.clone());
            self.diagnostics.push(d);
        }
        v
    }

    /// An integer option.
    pub fn int(&mut self, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        match v.as_int() {
            Ok(i) => Some(i),
            Err(_) => {
                self.wrong_type(key, "an integer", &v);
                None
            }
        }
    }

    /// A boolean option.
    pub fn bool(&mut self, key: &str) -> Option<bool> {
        let v = self.get(key)?;
        match v.as_bool() {
            Ok(b) => Some(b),
            Err(_) => {
                self.wrong_type(key, "true or false", &v);
                None
            }
        }
    }

    /// A map option.
    pub fn map(&mut self, key: &str) -> Option<Map> {
        let v = self.get(key)?;
        if v.is_map() {
            return v.try_cast::<Map>();
        }
        self.wrong_type(key, "a map `#{ ... }`", &v);
        None
    }

    /// A list of strings; a single string counts as a list of one.
    pub fn str_list(&mut self, key: &str) -> Vec<String> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        if v.is_string() {
            return vec![v.to_string()];
        }
        if v.is_array() {
            let items = v.clone().into_array().unwrap_or_default();
            if items.iter().all(|i| i.is_string() || i.is_int()) {
                return items.iter().map(ToString::to_string).collect();
            }
        }
        self.wrong_type(key, "a list of strings", &v);
        Vec::new()
    }

    /// A list of values; a single value counts as a list of one.
    pub fn list(&mut self, key: &str) -> Vec<Dynamic> {
        match self.get(key) {
            None => Vec::new(),
            Some(v) if v.is_array() => v.into_array().unwrap_or_default(),
            Some(v) => vec![v],
        }
    }

    /// A value of a registered custom type.
    pub fn custom<T: Clone + 'static>(&mut self, key: &str, expected: &str) -> Option<T> {
        let v = self.get(key)?;
        match v.clone().try_cast::<T>() {
            Some(t) => Some(t),
            None => {
                self.wrong_type(key, expected, &v);
                None
            }
        }
    }

    /// Reports keys that are not options of this call, suggesting the closest known one.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        let unknown: Vec<String> = self
            .map
            .keys()
            .filter(|k| !self.known.contains(&k.as_str()))
            .map(ToString::to_string)
            .collect();
        for key in unknown {
            let mut d = Diagnostic::error(
                Code::UnknownOption,
                format!("{} has no option `{key}`", self.what),
            )
            .at(self.site.at(&key))
            .label("unknown option");
            if let Some(best) = did_you_mean(&key, self.known) {
                d = d.help(format!("did you mean `{best}`?"));
            } else {
                d = d.help(format!("known options: {}", self.known.join(", ")));
            }
            self.diagnostics.push(d);
        }
        self.diagnostics
    }
}

/// The known name closest to `key`, if it is close enough to be a typo.
pub fn did_you_mean<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

//! Checking a plugin function's options map against its manifest when a script calls it.
//!
//! The resolver makes each public function that `plugin.toml` describes start with
//! `options = cairn_plugin_params("postgres", "instance", options);` (added on the line of the
//! function's `{`, so no line number moves). That call reports every unknown key (with a
//! "did you mean"), wrong type and missing required key at the *caller's* span, and returns
//! the options with defaults filled in, so the plugin body sees them.

use cairn_model::Code;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use cairn_model::Diagnostic;
use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Position};

use crate::api::{Ctx, R};
use crate::manifest::{FunctionSpec, Manifest, ParamSpec, ParamType, check_text};
use crate::opts::{Site, did_you_mean};
use crate::types::SensitiveStr;

/// The name of the checking function the resolver calls.
pub const CHECK_FN: &str = "cairn_plugin_params";

/// The manifests of the plugins loaded by one evaluation, by import name.
#[derive(Debug, Clone, Default)]
pub struct Manifests(Arc<Mutex<BTreeMap<String, Manifest>>>);

impl Manifests {
    /// Records a loaded plugin's manifest.
    pub fn insert(&self, name: &str, manifest: Manifest) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), manifest);
    }

    fn function(&self, plugin: &str, function: &str) -> Option<FunctionSpec> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(plugin)
            .and_then(|m| m.functions.get(function).cloned())
    }
}

/// The error that stops evaluation after its diagnostics were recorded: evaluation turns it
/// into no further diagnostic.
pub fn reported(pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(Dynamic::from(REPORTED), pos))
}

const REPORTED: &str = "cairn: reported";

/// Whether `err` (or what it wraps) is [`reported`].
pub fn is_reported(err: &EvalAltResult) -> bool {
    match err {
        EvalAltResult::ErrorTerminated(token, _) => {
            token.clone().into_string().is_ok_and(|s| s == REPORTED)
        }
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => is_reported(inner),
        _ => false,
    }
}

/// Registers the checking function.
pub fn register(engine: &mut Engine, ctx: &Ctx, manifests: &Manifests) {
    let ctx = ctx.clone();
    let manifests = manifests.clone();
    engine.register_fn(
        CHECK_FN,
        move |nc: NativeCallContext,
              plugin: &str,
              function: &str,
              options: Dynamic|
              -> R<Dynamic> {
            let Some(spec) = manifests.function(plugin, function) else {
                return Ok(options);
            };
            let site = caller_site(&ctx, &nc, function);
            let what = format!("{plugin}::{function}");
            let (checked, diagnostics, fatal) = check_options(&what, &spec, options, &site);
            let stop = fatal && diagnostics.iter().any(Diagnostic::is_error);
            ctx.report(diagnostics);
            if stop {
                return Err(reported(nc.call_position()));
            }
            Ok(checked)
        },
    );
}

/// The call of the plugin function: its span in the calling source, and the main script's
/// call that led there.
///
/// A frame's position is in the source of its caller, which is the frame below it (its
/// `source` names the module of the called function, or the caller's for unqualified calls),
/// or the main script for the first frame.
fn caller_site(ctx: &Ctx, nc: &NativeCallContext, function: &str) -> Site {
    let stack = nc.global_runtime_state().debugger().call_stack();
    let source_of_call = |i: usize| -> Option<&str> {
        match i.checked_sub(1) {
            None => Some(ctx.main.as_str()),
            Some(below) => stack.get(below)?.source.as_deref(),
        }
    };
    let immediate = stack
        .iter()
        .rposition(|frame| frame.fn_name.as_str() == function)
        .and_then(|i| ctx.sources.span(source_of_call(i)?, stack[i].pos));
    let main = stack
        .first()
        .and_then(|frame| ctx.sources.span(&ctx.main, frame.pos));
    let caller = if main == immediate { None } else { main };
    Site {
        span: immediate,
        caller,
        sources: ctx.sources.clone(),
    }
}

/// Checks `options` against `spec`: the options with defaults filled in (invalid values
/// dropped), the diagnostics, and whether the function cannot run (a required key is missing
/// or invalid, or the options are not a map).
pub fn check_options(
    what: &str,
    spec: &FunctionSpec,
    options: Dynamic,
    site: &Site,
) -> (Dynamic, Vec<Diagnostic>, bool) {
    let mut diagnostics = Vec::new();
    let Some(mut map) = options.clone().try_cast::<Map>() else {
        diagnostics.push(
            Diagnostic::error(
                Code::InvalidOption,
                format!(
                    "the options of {what} must be a map `#{{ ... }}`, found {}",
                    type_name(&options)
                ),
            )
            .at(site.span.clone()),
        );
        return (options, diagnostics, true);
    };
    let known: Vec<&str> = spec.params.keys().map(String::as_str).collect();
    let mut fatal = false;
    let mut invalid = Vec::new();
    let keys: Vec<String> = map.keys().map(ToString::to_string).collect();
    for key in keys {
        let Some(param) = spec.params.get(&key) else {
            diagnostics.push(unknown_option(what, &key, &known, site));
            map.remove(key.as_str());
            continue;
        };
        let Some(value) = map.get(key.as_str()).filter(|v| !v.is_unit()).cloned() else {
            continue;
        };
        if let Some(d) = check_value(what, &key, param.ty, &value, site) {
            diagnostics.push(d);
            map.remove(key.as_str());
            fatal |= param.required;
            invalid.push(key);
        }
    }
    for (key, param) in &spec.params {
        let present = map.get(key.as_str()).is_some_and(|v| !v.is_unit());
        if present {
            continue;
        }
        if let Some(default) = &param.default {
            map.insert(key.as_str().into(), to_dynamic(default));
        } else if param.required && !invalid.contains(key) {
            diagnostics.push(missing_option(what, key, param, site));
            fatal = true;
        }
    }
    (Dynamic::from_map(map), diagnostics, fatal)
}

/// An option the function does not take, with the closest known one.
fn unknown_option(what: &str, key: &str, known: &[&str], site: &Site) -> Diagnostic {
    let d = Diagnostic::error(Code::UnknownOption, format!("{what} has no option `{key}`"))
        .at(site.at(key))
        .label("unknown option");
    match did_you_mean(key, known) {
        Some(best) => d.help(format!("did you mean `{best}`?")),
        None => d.help(format!("known options: {}", known.join(", "))),
    }
}

/// A required option that is not given, with its documentation.
fn missing_option(what: &str, key: &str, param: &ParamSpec, site: &Site) -> Diagnostic {
    let mut d = Diagnostic::error(
        Code::MissingOption,
        format!("{what} needs the option `{key}`"),
    )
    .at(site.span.clone())
    .label("called here");
    if !param.doc.is_empty() {
        d = d.help(format!("`{key}` ({}): {}", param.ty, param.doc));
    }
    d
}

/// The problem with one option's value, if any.
fn check_value(
    what: &str,
    key: &str,
    ty: ParamType,
    value: &Dynamic,
    site: &Site,
) -> Option<Diagnostic> {
    let wrong = || {
        Diagnostic::error(
            Code::InvalidOption,
            format!(
                "option `{key}` of {what} must be {}, found {}",
                ty.describe(),
                type_name(value)
            ),
        )
        .at(site.at(key))
        .label(format!("not {}", ty.describe()))
    };
    let fits = match ty {
        ParamType::Any => true,
        ParamType::String => value.is_string() || value.is::<SensitiveStr>(),
        ParamType::Int => value.is_int(),
        ParamType::Bool => value.is_bool(),
        ParamType::Map => value.is_map(),
        ParamType::Array => value.is_array(),
        ParamType::Quantity => value.is_string() || value.is_int() || value.is_float(),
        ParamType::Duration | ParamType::DnsName | ParamType::Cron => value.is_string(),
    };
    if !fits {
        return Some(wrong());
    }
    if matches!(
        ty,
        ParamType::Quantity | ParamType::Duration | ParamType::DnsName | ParamType::Cron
    ) {
        let text = value.to_string();
        if let Err(why) = check_text(ty, &text) {
            let (code, label) = match ty {
                ParamType::Quantity => (Code::InvalidQuantity, "not a Kubernetes quantity"),
                ParamType::DnsName => (Code::InvalidDnsName, "not a DNS name"),
                ParamType::Cron => (Code::InvalidSchedule, "not a cron schedule"),
                _ => (Code::InvalidOption, "not a duration"),
            };
            return Some(
                Diagnostic::error(code, format!("option `{key}` of {what}: {why}"))
                    .at(site.at(&text))
                    .label(label),
            );
        }
    }
    None
}

fn type_name(value: &Dynamic) -> &'static str {
    if value.is_string() {
        "a string"
    } else if value.is_int() {
        "an integer"
    } else if value.is_float() {
        "a number"
    } else if value.is_bool() {
        "a boolean"
    } else if value.is_map() {
        "a map"
    } else if value.is_array() {
        "an array"
    } else if value.is::<SensitiveStr>() {
        "a sensitive value"
    } else {
        "a value of another type"
    }
}

/// A manifest default as a Rhai value.
pub fn to_dynamic(value: &toml::Value) -> Dynamic {
    match value {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(items) => Dynamic::from_array(items.iter().map(to_dynamic).collect()),
        toml::Value::Table(t) => Dynamic::from_map(
            t.iter()
                .map(|(k, v)| (k.as_str().into(), to_dynamic(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use cairn_model::{Sensitive, SensitivePart};

    use super::*;
    use crate::manifest::ParamSpec;
    use crate::sources::Sources;

    fn spec(ty: ParamType) -> FunctionSpec {
        FunctionSpec {
            doc: String::new(),
            params: [(
                "password".to_owned(),
                ParamSpec {
                    ty,
                    required: true,
                    default: None,
                    doc: String::new(),
                },
            )]
            .into_iter()
            .collect(),
        }
    }

    fn site() -> Site {
        Site {
            span: None,
            caller: None,
            sources: Sources::default(),
        }
    }

    fn secret() -> Dynamic {
        Dynamic::from(SensitiveStr(Sensitive::from_part(SensitivePart::Literal(
            "hunter2".to_owned(),
        ))))
    }

    #[test]
    fn a_sensitive_value_is_a_string() {
        let mut options = Map::new();
        options.insert("password".into(), secret());
        let (checked, diagnostics, fatal) = check_options(
            "p::f",
            &spec(ParamType::String),
            Dynamic::from_map(options),
            &site(),
        );
        assert!(diagnostics.is_empty() && !fatal, "{diagnostics:?}");
        let map = checked.try_cast::<Map>().unwrap();
        assert!(map["password"].is::<SensitiveStr>());
    }

    #[test]
    fn a_sensitive_value_never_shows_in_a_type_error() {
        let mut options = Map::new();
        options.insert("password".into(), secret());
        let (_, diagnostics, fatal) = check_options(
            "p::f",
            &spec(ParamType::Quantity),
            Dynamic::from_map(options),
            &site(),
        );
        assert!(fatal);
        assert_eq!(
            diagnostics[0].message,
            "option `password` of p::f must be a quantity, found a sensitive value"
        );
        assert!(!format!("{diagnostics:?}").contains("hunter2"));
    }

    #[test]
    fn options_must_be_a_map() {
        let (_, diagnostics, fatal) =
            check_options("p::f", &spec(ParamType::String), "x".into(), &site());
        assert!(fatal);
        assert_eq!(
            diagnostics[0].message,
            "the options of p::f must be a map `#{ ... }`, found a string"
        );
    }
}

//! What a command starts from: a script (or a revision's sources), the variables it reads, and
//! the working directory; evaluated and checked into a desired state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_model::{Code, DesiredState, Diagnostic};
use cairn_stdlib::Evaluation;

use crate::error::{Error, Result};

/// An environment script and what it reads besides itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The script, e.g. `environments/staging.rhai`.
    pub path: PathBuf,
    /// A variables file (`KEY=VALUE` lines, see [`read_env_file`]); the process environment
    /// wins over it.
    pub env_file: Option<PathBuf>,
    /// Extra plugin directories.
    pub plugin_path: Vec<PathBuf>,
}

/// Where a command runs: the process environment and the working directory (`.cairn/`).
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The process environment.
    pub vars: BTreeMap<String, String>,
    /// The working directory.
    pub cwd: PathBuf,
}

/// A line of a variables file that is not a variable, a comment or blank. It never quotes the
/// line: a value there may be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvLineProblem {
    /// No `=` on the line.
    #[error("not `KEY=VALUE`: there is no `=` on the line")]
    NoEquals,
    /// The name before `=` is not a variable name.
    #[error("{0:?} is not a variable name (letters, digits and `_`, not starting with a digit)")]
    BadName(String),
    /// A quoted value without its closing quote (values do not span lines).
    #[error("the value of `{0}` opens a quote ({1}) that the line does not close")]
    Unterminated(String, char),
    /// Something other than a comment after a quoted value.
    #[error(
        "the value of `{0}` goes on after its closing quote ({1}); only a `# comment` may follow"
    )]
    AfterQuote(String, char),
}

/// A problem of a variables file, at its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct EnvFileError {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong with it.
    pub problem: EnvLineProblem,
}

/// Parses a variables file as dotenv does, and reports every line it cannot read.
///
/// Each line is `KEY=VALUE` or `export KEY=VALUE`; blank lines and lines starting with `#` are
/// skipped. The name is letters, digits and `_` (not starting with a digit); around it and the
/// value, whitespace goes. A value in double quotes may use the escapes `\n`, `\t`, `\"` and
/// `\\`; one in single quotes is taken literally; either must close on its line and may be
/// followed only by a `# comment`. An unquoted value ends at a ` #` comment. Nothing is
/// expanded (`$OTHER` stays as written); a name given twice keeps its last value.
pub fn read_env_file(text: &str) -> (BTreeMap<String, String>, Vec<EnvFileError>) {
    let mut vars = BTreeMap::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match env_line(line) {
            Ok((k, v)) => {
                vars.insert(k, v);
            }
            Err(problem) => problems.push(EnvFileError {
                line: n + 1,
                problem,
            }),
        }
    }
    (vars, problems)
}

/// The variables of a variables file, leaving out the lines [`read_env_file`] reports.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    read_env_file(text).0
}

/// One `KEY=VALUE` line, trimmed, not a comment.
fn env_line(line: &str) -> Result<(String, String), EnvLineProblem> {
    let line = line
        .strip_prefix("export")
        .filter(|rest| rest.starts_with([' ', '\t']))
        .map_or(line, str::trim_start);
    let (k, v) = line.split_once('=').ok_or(EnvLineProblem::NoEquals)?;
    let k = k.trim();
    let valid = k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && k.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if !valid {
        return Err(EnvLineProblem::BadName(k.to_owned()));
    }
    let v = v.trim();
    let value = match v.chars().next() {
        Some(q @ ('"' | '\'')) => quoted(k, &v[1..], q)?,
        _ => match v.find(" #").or_else(|| v.find("\t#")) {
            Some(i) => v[..i].trim_end().to_owned(),
            None => v.to_owned(),
        },
    };
    Ok((k.to_owned(), value))
}

/// A value after its opening quote `q`: up to the closing one, then only a comment.
fn quoted(key: &str, rest: &str, q: char) -> Result<String, EnvLineProblem> {
    let mut value = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == q {
            let after = rest[i + 1..].trim_start();
            if !after.is_empty() && !after.starts_with('#') {
                return Err(EnvLineProblem::AfterQuote(key.to_owned(), q));
            }
            return Ok(value);
        }
        if c == '\\' && q == '"' {
            match chars.next().map(|(_, e)| e) {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some(e @ ('"' | '\\')) => value.push(e),
                Some(e) => {
                    value.push('\\');
                    value.push(e);
                }
                None => value.push('\\'),
            }
            continue;
        }
        value.push(c);
    }
    Err(EnvLineProblem::Unterminated(key.to_owned(), q))
}

/// The cache root for git plugins: `$CAIRN_CACHE_DIR`, else `$XDG_CACHE_HOME/cairn`, else
/// `~/.cache/cairn` (git plugins go into its `plugins/`).
pub fn cache_dir(vars: &BTreeMap<String, String>) -> Option<PathBuf> {
    let set = |k: &str| vars.get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("CAIRN_CACHE_DIR")
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("cairn")))
        .or_else(|| set("HOME").map(|d| d.join(".cache").join("cairn")))
}

/// Extra plugin directories from `CAIRN_PLUGIN_PATH` (`:`-separated).
pub fn plugin_path_of(vars: &BTreeMap<String, String>) -> Vec<PathBuf> {
    vars.get("CAIRN_PLUGIN_PATH")
        .map(|extra| {
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Evaluates a script with the variables file's and the process's variables.
pub fn evaluate(script: &Script, ctx: &Context) -> Result<Evaluation> {
    let mut vars = BTreeMap::new();
    let mut problems = Vec::new();
    if let Some(file) = &script.env_file {
        let text = std::fs::read_to_string(file).map_err(|e| Error::file("read", file, e))?;
        let (read, wrong) = read_env_file(&text);
        vars.extend(read);
        problems.extend(wrong.iter().map(|e| env_file_diagnostic(file, e)));
    }
    vars.extend(ctx.vars.clone());
    let mut plugin_path = script.plugin_path.clone();
    plugin_path.extend(plugin_path_of(&ctx.vars));
    let options = cairn_stdlib::EvalOptions {
        vars,
        plugin_path,
        cache_dir: cache_dir(&ctx.vars),
        ..cairn_stdlib::EvalOptions::default()
    };
    let mut eval = cairn_stdlib::evaluate_file(&script.path, &options);
    if !problems.is_empty() {
        problems.append(&mut eval.diagnostics);
        eval.diagnostics = problems;
    }
    Ok(eval)
}

/// The error of a line of the variables file: the file and line are named, the line is not
/// shown (its value may be a secret).
fn env_file_diagnostic(file: &Path, e: &EnvFileError) -> Diagnostic {
    Diagnostic::error(
        Code::InvalidEnvFile,
        format!("{}:{}: {}", file.display(), e.line, e.problem),
    )
    .help("each line of a variables file is KEY=VALUE or `export KEY=VALUE` (blank lines and `#` comments are skipped); quote a value with \"...\" (escapes \\n \\t \\\" \\\\) or '...' (taken literally), closed on its line")
}

/// Every diagnostic of an evaluation, evaluation's first, then the plan-time checks of the
/// whole state (only when evaluation got through the script).
pub fn check_diagnostics(eval: &Evaluation) -> Vec<Diagnostic> {
    let mut all = eval.diagnostics.clone();
    if !eval.stopped
        && !eval.diagnostics.iter().any(|d| {
            matches!(
                d.code,
                Code::SyntaxError
                    | Code::ScriptError
                    | Code::ScriptLimit
                    | Code::PluginNotFound
                    | Code::UnreadableScript
            )
        })
    {
        all.extend(cairn_plan::check(&eval.state));
    }
    if eval.state.resources.is_empty() && !all.iter().any(Diagnostic::is_error) {
        all.push(nothing_declared(&eval.state));
    }
    all
}

/// The warning of an environment that declares nothing: it owns nothing to plan or apply,
/// and emptying a script does not tear an environment down.
fn nothing_declared(state: &DesiredState) -> Diagnostic {
    Diagnostic::warning(
        Code::NothingDeclared,
        format!(
            "environment {} declares nothing: no namespace and no resource",
            state.environment.name
        ),
    )
    .help("declare its namespace and what runs in it: with nothing declared, cairn does not look for what the environment already owns")
}

/// Fresh values for the state's generated passwords (`render --show-secrets`: nothing is read
/// from a cluster).
pub fn fresh_generated(state: &DesiredState) -> BTreeMap<u32, String> {
    state
        .generated
        .iter()
        .map(|(id, g)| (*id, g.fresh_value()))
        .collect()
}

/// A script's path relative to nothing: the normal components of a recorded name.
pub(crate) fn relative(name: &str) -> PathBuf {
    Path::new(name)
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_as_dotenv_does() {
        let text = "# comment\n\nA=1\nexport B = two words # note\nC=\"x \\\"y\\\"\\nz\" # c\nD='a \\n $E'\nexported=3\nF=\nG=a#b\n";
        let (vars, problems) = read_env_file(text);
        assert!(problems.is_empty(), "{problems:?}");
        let get = |k: &str| vars.get(k).map(String::as_str);
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("B"), Some("two words"));
        assert_eq!(get("C"), Some("x \"y\"\nz"));
        assert_eq!(get("D"), Some("a \\n $E"));
        assert_eq!(get("exported"), Some("3"));
        assert_eq!(get("F"), Some(""));
        assert_eq!(get("G"), Some("a#b"));
    }

    #[test]
    fn bad_env_lines_are_reported_without_their_values() {
        let text = "OK=1\nhunter2\n1X=2\nMY KEY=3\nP=\"s3cr3t\nQ='a' b\n";
        let (vars, problems) = read_env_file(text);
        assert_eq!(vars.keys().collect::<Vec<_>>(), ["OK"]);
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "line 2: not `KEY=VALUE`: there is no `=` on the line",
                "line 3: \"1X\" is not a variable name (letters, digits and `_`, not starting with a digit)",
                "line 4: \"MY KEY\" is not a variable name (letters, digits and `_`, not starting with a digit)",
                "line 5: the value of `P` opens a quote (\") that the line does not close",
                "line 6: the value of `Q` goes on after its closing quote ('); only a `# comment` may follow",
            ]
        );
        assert!(!shown.concat().contains("hunter2") && !shown.concat().contains("s3cr3t"));
    }
}

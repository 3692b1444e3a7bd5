use serde::Serialize;

use crate::Code;

/// Where in a script something was declared: the file as it was given to cairn, a byte range
/// and the 1-based line and column of its start.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Span {
    /// The script or plugin file, as its path was given or resolved.
    pub file: String,
    /// Byte offset of the start in the file's text.
    pub offset: usize,
    /// Length in bytes (at least 1 when the span points at anything).
    pub len: usize,
    /// 1-based line of the start.
    pub line: u32,
    /// 1-based column (in characters) of the start.
    pub col: u32,
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Reported, but the command still succeeds.
    Warning,
    /// The command fails (exit code 1).
    Error,
}

/// One problem found by evaluation or by a plan-time check.
///
/// Diagnostics are collected, not thrown: every phase returns all of them at once.
/// A diagnostic never contains a sensitive value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable code such as `invalid-quantity` (the registry: [`Code`]), for docs and filters.
    pub code: Code,
    /// What is wrong: a lowercase phrase without a trailing dot.
    pub message: String,
    /// Where it comes from, when it comes from a script.
    pub span: Option<Span>,
    /// A short label shown at the span.
    pub label: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
    /// Other places that matter (for example the first declaration of a duplicate).
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    /// An error with a code and message.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    /// A warning with a code and message.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }

    fn new(severity: Severity, code: Code, message: impl Into<String>) -> Self {
        Self {
            severity,
            code,
            message: message.into(),
            span: None,
            label: None,
            help: None,
            related: Vec::new(),
        }
    }

    /// Attaches the span (if any) the problem comes from.
    #[must_use]
    pub fn at(mut self, span: Option<Span>) -> Self {
        self.span = span;
        self
    }

    /// Attaches a label shown at the span.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Attaches advice.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Attaches a related location.
    #[must_use]
    pub fn related(mut self, span: Option<Span>, label: impl Into<String>) -> Self {
        if let Some(span) = span {
            self.related.push((span, label.into()));
        }
        self
    }

    /// Whether this diagnostic fails the command.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

//! Rendering diagnostics with miette: the one place diagnostics become text.

use cairn_model::{Diagnostic, Severity};
use cairn_stdlib::Sources;
use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource, Report,
};

/// Renders diagnostics as miette reports, errors and warnings alike, followed by a summary line.
pub fn render(diagnostics: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for d in diagnostics {
        let report = to_report(d, sources);
        let mut text = String::new();
        if handler.render_report(&mut text, report.as_ref()).is_err() {
            text = format!("{}: {}\n", d.code, d.message);
        }
        out.push_str(&text);
        out.push('\n');
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    out.push_str(&summary(errors, warnings));
    out
}

/// `2 errors, 1 warning` style summary line.
pub fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}\n",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

fn to_report(d: &Diagnostic, sources: &Sources) -> Report {
    let mut m = MietteDiagnostic::new(d.message.clone())
        .with_code(d.code.as_str())
        .with_severity(match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        });
    if let Some(help) = &d.help {
        m = m.with_help(help.clone());
    }
    let Some(span) = &d.span else {
        return Report::new(m);
    };
    let mut labels = vec![LabeledSpan::new_primary_with_span(
        d.label.clone(),
        (span.offset, span.len.max(1)),
    )];
    for (related, label) in &d.related {
        if related.file == span.file {
            labels.push(LabeledSpan::new_with_span(
                Some(label.clone()),
                (related.offset, related.len.max(1)),
            ));
        }
    }
    m = m.with_labels(labels);
    let text = sources.get(&span.file).unwrap_or_default();
    Report::new(m).with_source_code(NamedSource::new(&span.file, text))
}

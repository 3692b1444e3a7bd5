//! Source texts of the evaluation, and the one place where Rhai positions become spans.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use cairn_model::Span;
use rhai::Position;

/// The texts of the script and of the plugins it loaded, by display name.
#[derive(Debug, Clone, Default)]
pub struct Sources(Arc<Mutex<BTreeMap<String, String>>>);

impl Sources {
    /// Records a source text.
    pub fn insert(&self, name: &str, text: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), text.to_owned());
    }

    /// The text of a source.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// All sources, by name.
    pub fn all(&self) -> BTreeMap<String, String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The span of the token at a Rhai position (1-based line, 1-based column).
    pub fn span(&self, name: &str, pos: Position) -> Option<Span> {
        let (line, col) = (pos.line()?, pos.position().unwrap_or(1));
        let text = self.get(name)?;
        let offset = offset_of(&text, line, col)?;
        let len = token_len(&text[offset..]);
        Some(Span {
            file: name.to_owned(),
            offset,
            len,
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        })
    }

    /// Narrows a call's span to the quoted literal `needle` inside the call's parentheses, when
    /// it is there; otherwise returns the call's span.
    pub fn narrow(&self, call: Option<Span>, needle: &str) -> Option<Span> {
        let call = call?;
        let Some(text) = self.get(&call.file) else {
            return Some(call);
        };
        let end = call_end(&text, call.offset);
        let region = &text[call.offset..end];
        let quoted = format!("\"{needle}\"");
        let found = region
            .find(&quoted)
            .or_else(|| (!needle.is_empty()).then(|| region.find(needle)).flatten());
        match found {
            Some(rel) => {
                let offset = call.offset + rel;
                let len = if region[rel..].starts_with('"') {
                    quoted.len()
                } else {
                    needle.len()
                };
                let (line, col) = line_col(&text, offset);
                Some(Span {
                    file: call.file,
                    offset,
                    len,
                    line,
                    col,
                })
            }
            None => Some(call),
        }
    }
}

fn offset_of(text: &str, line: usize, col: usize) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += text[start..].find('\n')? + 1;
    }
    let line_text = &text[start..];
    let within = line_text
        .char_indices()
        .nth(col.saturating_sub(1))
        .map_or(line_text.len(), |(i, _)| i);
    Some(start + within)
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before, |nl| &before[nl + 1..])
        .chars()
        .count()
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// Length of the token that starts `rest`: an identifier (after an optional `.`), a string
/// literal, or one character.
fn token_len(rest: &str) -> usize {
    let mut chars = rest.char_indices().peekable();
    match chars.peek() {
        None => 0,
        Some((_, '"')) => rest[1..].find('"').map_or(1, |end| end + 2),
        Some((_, c)) if c.is_alphanumeric() || *c == '_' || *c == '.' => {
            let skip = usize::from(rest.starts_with('.'));
            skip + rest[skip..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len() - skip)
        }
        Some((_, c)) => c.len_utf8(),
    }
}

/// Where the call whose name starts at `offset` ends: after its balanced parentheses, or at
/// the end of the line when it has none.
fn call_end(text: &str, offset: usize) -> usize {
    let rest = &text[offset..];
    let Some(open) = rest.find(['(', '\n', ';']) else {
        return text.len();
    };
    if !rest[open..].starts_with('(') {
        return offset + open;
    }
    let mut depth = 0usize;
    let mut in_str = false;
    let mut prev = '\0';
    for (i, c) in rest[open..].char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '[' | '{' if !in_str => depth += 1,
            ')' | ']' | '}' if !in_str => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return offset + open + i + 1;
                }
            }
            _ => {}
        }
        prev = c;
    }
    text.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_token_and_narrow_to_literals() {
        let sources = Sources::default();
        let text = "let x = 1;\nenv.deployment(\"web\", #{ cpu: \"1.5.5Gi\" });\n";
        sources.insert("s.rhai", text);
        let span = sources.span("s.rhai", Position::new(2, 4)).unwrap();
        assert_eq!(&text[span.offset..span.offset + span.len], ".deployment");
        let narrowed = sources.narrow(Some(span), "1.5.5Gi").unwrap();
        assert_eq!(
            &text[narrowed.offset..narrowed.offset + narrowed.len],
            "\"1.5.5Gi\""
        );
        assert_eq!((narrowed.line, narrowed.col), (2, 31));
    }
}

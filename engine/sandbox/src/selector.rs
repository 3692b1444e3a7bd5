//! Label and field selectors, parsed like apimachinery's `labels.Parse`.

use cairn_model::JsonPath as _;
use serde_json::Value;

/// A label or field selector that does not parse; the messages are apimachinery's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// One requirement of a label selector is malformed.
    #[error("unable to parse requirement: {source}")]
    Requirement {
        /// What is wrong in it.
        #[source]
        source: RequirementError,
    },
    /// A token after a requirement that is neither `,` nor the end.
    #[error("found '{found}', expected: ',' or 'end of string'")]
    Trailing {
        /// The token found.
        found: String,
    },
    /// A field selector part with no `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{part}'")]
    Field {
        /// The whole selector.
        selector: String,
        /// The part that has no operator.
        part: String,
    },
}

/// A token of a label selector requirement that is not what the grammar expects there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("found '{found}', expected: {expected}")]
pub struct RequirementError {
    /// The token found.
    found: String,
    /// What the grammar expects, as apimachinery words it.
    expected: &'static str,
}

impl RequirementError {
    fn new(found: &Tok, expected: &'static str) -> RequirementError {
        RequirementError {
            found: found.lit(),
            expected,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    NotExists,
    Gt,
    Lt,
}

#[derive(Debug, Clone)]
struct Req {
    key: String,
    op: Op,
    values: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    reqs: Vec<Req>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Eq,
    DoubleEq,
    NotEq,
    In,
    NotIn,
    Open,
    Close,
    Comma,
    Bang,
    Gt,
    Lt,
    End,
}

impl Tok {
    fn lit(&self) -> String {
        match self {
            Tok::Ident(s) => s.clone(),
            Tok::Eq => "=".into(),
            Tok::DoubleEq => "==".into(),
            Tok::NotEq => "!=".into(),
            Tok::In => "in".into(),
            Tok::NotIn => "notin".into(),
            Tok::Open => "(".into(),
            Tok::Close => ")".into(),
            Tok::Comma => ",".into(),
            Tok::Bang => "!".into(),
            Tok::Gt => ">".into(),
            Tok::Lt => "<".into(),
            Tok::End => String::new(),
        }
    }
}

fn lex(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let special = |c: char| "=!(),<>".contains(c) || c.is_whitespace();
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if special(c) {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let (t, n) = match (c, two.as_str()) {
                (_, "==") => (Tok::DoubleEq, 2),
                (_, "!=") => (Tok::NotEq, 2),
                ('=', _) => (Tok::Eq, 1),
                ('!', _) => (Tok::Bang, 1),
                ('(', _) => (Tok::Open, 1),
                (')', _) => (Tok::Close, 1),
                (',', _) => (Tok::Comma, 1),
                ('>', _) => (Tok::Gt, 1),
                _ => (Tok::Lt, 1),
            };
            out.push(t);
            i += n;
            continue;
        }
        let start = i;
        while i < cs.len() && !special(cs[i]) {
            i += 1;
        }
        let word: String = cs[start..i].iter().collect();
        out.push(match word.as_str() {
            "in" => Tok::In,
            "notin" => Tok::NotIn,
            _ => Tok::Ident(word),
        });
    }
    out.push(Tok::End);
    out
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Tok {
        self.toks.get(self.pos).cloned().unwrap_or(Tok::End)
    }
    fn next(&mut self) -> Tok {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn requirement(&mut self) -> Result<Req, RequirementError> {
        let mut negate = false;
        if self.peek() == Tok::Bang {
            self.next();
            negate = true;
        }
        let key = match self.next() {
            Tok::Ident(k) => k,
            t => return Err(RequirementError::new(&t, "identifier")),
        };
        if negate {
            return Ok(Req {
                key,
                op: Op::NotExists,
                values: vec![],
            });
        }
        let op = match self.peek() {
            Tok::End | Tok::Comma => {
                return Ok(Req {
                    key,
                    op: Op::Exists,
                    values: vec![],
                });
            }
            Tok::Eq | Tok::DoubleEq => Op::Eq,
            Tok::NotEq => Op::NotEq,
            Tok::In => Op::In,
            Tok::NotIn => Op::NotIn,
            Tok::Gt => Op::Gt,
            Tok::Lt => Op::Lt,
            t => {
                return Err(RequirementError::new(&t, "'=', '!=', '==', 'in', notin'"));
            }
        };
        self.next();
        let values = if matches!(op, Op::In | Op::NotIn) {
            self.set_values()?
        } else {
            self.single_value()?
        };
        Ok(Req { key, op, values })
    }

    /// `(a, b)` after `in` or `notin`; an empty item is the empty value.
    fn set_values(&mut self) -> Result<Vec<String>, RequirementError> {
        match self.next() {
            Tok::Open => {}
            t => return Err(RequirementError::new(&t, "'('")),
        }
        let mut vals = Vec::new();
        loop {
            match self.peek() {
                Tok::Ident(v) => {
                    self.next();
                    vals.push(v);
                }
                Tok::Close if vals.is_empty() => {}
                Tok::Comma => vals.push(String::new()),
                _ => {}
            }
            match self.next() {
                Tok::Comma => continue,
                Tok::Close => return Ok(vals),
                t => return Err(RequirementError::new(&t, "',' or ')'")),
            }
        }
    }

    /// The value after `=`, `==`, `!=`, `>` or `<` (empty at the end of the requirement).
    fn single_value(&mut self) -> Result<Vec<String>, RequirementError> {
        match self.peek() {
            Tok::Ident(v) => {
                self.next();
                Ok(vec![v])
            }
            Tok::End | Tok::Comma => Ok(vec![String::new()]),
            t => Err(RequirementError::new(&t, "identifier for value")),
        }
    }
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut p = Parser {
            toks: lex(s),
            pos: 0,
        };
        let mut reqs = Vec::new();
        if p.peek() == Tok::End {
            return Ok(LabelSelector { reqs });
        }
        loop {
            let r = p
                .requirement()
                .map_err(|source| SelectorError::Requirement { source })?;
            reqs.push(r);
            match p.next() {
                Tok::End => break,
                Tok::Comma => continue,
                t => return Err(SelectorError::Trailing { found: t.lit() }),
            }
        }
        Ok(LabelSelector { reqs })
    }

    pub fn matches(&self, labels: Option<&Value>) -> bool {
        self.reqs.iter().all(|r| {
            let v = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match r.op {
                Op::Eq => v == r.values.first().map(String::as_str),
                Op::NotEq => v != r.values.first().map(String::as_str),
                Op::In => v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::NotIn => !v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Gt | Op::Lt => {
                    let (Some(a), Some(b)) = (
                        v.and_then(|x| x.parse::<i64>().ok()),
                        r.values.first().and_then(|x| x.parse::<i64>().ok()),
                    ) else {
                        return false;
                    };
                    if r.op == Op::Gt { a > b } else { a < b }
                }
            }
        })
    }

    /// A selector that selects everything.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(obj.at("/metadata/labels"))
    }
}

/// `metadata.name=x,status.phase!=Running`.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let mut reqs = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(SelectorError::Field {
                    selector: s.to_string(),
                    part: part.to_string(),
                });
            };
            reqs.push((k.trim().to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    /// A selector that selects everything.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(k, eq, v)| {
            let mut cur = Some(obj);
            for part in k.split('.') {
                cur = cur.and_then(|c| c.get(part));
            }
            let actual = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *v) == *eq
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_like_apimachinery() {
        assert_eq!(
            LabelSelector::parse("app in (web").unwrap_err().to_string(),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            LabelSelector::parse("a==b==c").unwrap_err().to_string(),
            "found '==', expected: ',' or 'end of string'"
        );
        let s = LabelSelector::parse("rec.example.com/page in (yes),!tier").unwrap();
        assert!(s.matches(Some(&json!({"rec.example.com/page": "yes"}))));
        assert!(!s.matches(Some(&json!({"rec.example.com/page": "yes", "tier": "x"}))));
        let s = LabelSelector::parse("a notin (x, y),b").unwrap();
        assert!(s.matches(Some(&json!({"a": "z", "b": ""}))));
        assert!(!s.matches(Some(&json!({"a": "x", "b": ""}))));
    }
}

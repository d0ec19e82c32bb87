//! Label selectors in kubectl's syntax, matched against the labels kubelet puts on sandboxes.
//!
//! Supported, as `kubectl get -l` accepts them: `key=value`, `key==value`, `key!=value`,
//! `key`, `!key`, `key in (a,b)`, `key notin (a,b)`, joined by commas (all must hold).
//! The numeric `key>1` / `key<1` forms of the API are refused with an error naming them.

use std::collections::HashMap;
use std::fmt;

/// A label selector could not be parsed; says where and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad label selector {selector:?}: at byte {position} ({token}): {reason}")]
pub struct SelectorError {
    /// The whole selector.
    pub selector: String,
    /// The offending token (or "end of input").
    pub token: String,
    /// Byte offset of the token in the selector.
    pub position: usize,
    /// What was wrong, and what was expected.
    pub reason: String,
}

/// One condition of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`: the label is present with this value.
    Equals(String, String),
    /// `key!=value`: the label is absent or has another value.
    NotEquals(String, String),
    /// `key in (a,b)`: the label is present with one of the values.
    In(String, Vec<String>),
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn(String, Vec<String>),
    /// `key`: the label is present, with any value.
    Exists(String),
    /// `!key`: the label is absent.
    DoesNotExist(String),
}

impl Requirement {
    /// Whether the labels satisfy this requirement (Kubernetes semantics: the negative forms
    /// also match pods that lack the label).
    pub fn matches(&self, labels: &HashMap<String, String>) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => !labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Equals(k, v) => write!(f, "{k}={v}"),
            Requirement::NotEquals(k, v) => write!(f, "{k}!={v}"),
            Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(",")),
            Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(",")),
            Requirement::Exists(k) => write!(f, "{k}"),
            Requirement::DoesNotExist(k) => write!(f, "!{k}"),
        }
    }
}

/// A parsed label selector: all requirements must hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses kubectl's selector syntax.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        Parser::new(selector).parse()
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &HashMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The `key=value` pairs the runtime can filter on by itself (CRI's label filter only
    /// knows exact matches), so fewer sandboxes cross the socket.
    pub fn exact_matches(&self) -> impl Iterator<Item = (&str, &str)> {
        self.requirements.iter().filter_map(|r| match r {
            Requirement::Equals(k, v) => Some((k.as_str(), v.as_str())),
            Requirement::In(k, vs) if vs.len() == 1 => Some((k.as_str(), vs[0].as_str())),
            _ => None,
        })
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, SelectorError> {
        Self::parse(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Open,
    Close,
    Comma,
    Gt,
    Lt,
    End,
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) => write!(f, "{w:?}"),
            Token::Bang => f.write_str("\"!\""),
            Token::Eq => f.write_str("\"=\""),
            Token::DoubleEq => f.write_str("\"==\""),
            Token::NotEq => f.write_str("\"!=\""),
            Token::Open => f.write_str("\"(\""),
            Token::Close => f.write_str("\")\""),
            Token::Comma => f.write_str("\",\""),
            Token::Gt => f.write_str("\">\""),
            Token::Lt => f.write_str("\"<\""),
            Token::End => f.write_str("end of input"),
        }
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser { input, pos: 0 }
    }

    fn error(&self, at: usize, token: &Token<'_>, reason: impl Into<String>) -> SelectorError {
        SelectorError {
            selector: self.input.to_owned(),
            token: token.to_string(),
            position: at,
            reason: reason.into(),
        }
    }

    /// The next token and where it starts, without consuming it.
    fn peek(&self) -> Result<(usize, Token<'a>, usize), SelectorError> {
        let rest = &self.input[self.pos..];
        let skipped = rest.len() - rest.trim_start().len();
        let start = self.pos + skipped;
        let rest = &self.input[start..];
        let Some(c) = rest.chars().next() else {
            return Ok((start, Token::End, start));
        };
        let two = rest.get(..2);
        let (token, len) = match c {
            '!' if two == Some("!=") => (Token::NotEq, 2),
            '!' => (Token::Bang, 1),
            '=' if two == Some("==") => (Token::DoubleEq, 2),
            '=' => (Token::Eq, 1),
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            ',' => (Token::Comma, 1),
            '>' => (Token::Gt, 1),
            '<' => (Token::Lt, 1),
            c if is_word_char(c) => {
                let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
                (Token::Word(&rest[..len]), len)
            }
            other => {
                let token = Token::Word(&rest[..other.len_utf8()]);
                return Err(self.error(
                    start,
                    &token,
                    "unexpected character; keys and values use letters, digits, '-', '_', '.' (and one '/' in keys)",
                ));
            }
        };
        Ok((start, token, start + len))
    }

    fn next(&mut self) -> Result<(usize, Token<'a>), SelectorError> {
        let (start, token, end) = self.peek()?;
        self.pos = end;
        Ok((start, token))
    }

    fn parse(mut self) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if self.input.trim().is_empty() {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next()? {
                (_, Token::End) => break,
                (_, Token::Comma) => continue,
                (at, token) => {
                    return Err(self.error(
                        at,
                        &token,
                        "expected \",\" or the end after a requirement",
                    ));
                }
            }
        }
        Ok(LabelSelector { requirements })
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (at, token) = self.next()?;
        if token == Token::Bang {
            let key = self.key()?;
            return Ok(Requirement::DoesNotExist(key));
        }
        let Token::Word(word) = token else {
            return Err(self.error(at, &token, "expected a label key or \"!key\""));
        };
        let key = self.check_key(at, word)?;
        let (op_at, op, _) = self.peek()?;
        match op {
            Token::End | Token::Comma => Ok(Requirement::Exists(key)),
            Token::Eq | Token::DoubleEq => {
                self.next()?;
                Ok(Requirement::Equals(key, self.value()?))
            }
            Token::NotEq => {
                self.next()?;
                Ok(Requirement::NotEquals(key, self.value()?))
            }
            Token::Word("in") => {
                self.next()?;
                Ok(Requirement::In(key, self.set()?))
            }
            Token::Word("notin") => {
                self.next()?;
                Ok(Requirement::NotIn(key, self.set()?))
            }
            Token::Gt | Token::Lt => Err(self.error(
                op_at,
                &op,
                "numeric comparisons are not supported by kubectl selectors; use =, !=, in, notin, exists, !key",
            )),
            other => Err(self.error(
                op_at,
                &other,
                "expected an operator: =, ==, !=, in, notin (or \",\" / end for \"key exists\")",
            )),
        }
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.next()? {
            (at, Token::Word(word)) => self.check_key(at, word),
            (at, token) => Err(self.error(at, &token, "expected a label key")),
        }
    }

    fn check_key(&self, at: usize, word: &str) -> Result<String, SelectorError> {
        let token = Token::Word(word);
        let (prefix, name) = match word.split_once('/') {
            Some((prefix, name)) => (Some(prefix), name),
            None => (None, word),
        };
        if let Some(prefix) = prefix {
            let ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !part.starts_with('-')
                        && !part.ends_with('-')
                });
            if !ok {
                return Err(self.error(
                    at,
                    &token,
                    "the key prefix must be a DNS subdomain (lowercase letters, digits, '-', '.')",
                ));
            }
        }
        if !valid_name(name) || name.is_empty() {
            return Err(self.error(
                at,
                &token,
                "a key name is 1-63 characters: letters, digits, '-', '_', '.', starting and ending with a letter or digit",
            ));
        }
        Ok(word.to_owned())
    }

    fn value(&mut self) -> Result<String, SelectorError> {
        let (at, token, end) = self.peek()?;
        match token {
            // `key=` selects the empty value, as in Kubernetes.
            Token::End | Token::Comma | Token::Close => Ok(String::new()),
            Token::Word(word) => {
                self.pos = end;
                if valid_name(word) {
                    Ok(word.to_owned())
                } else {
                    Err(self.error(
                        at,
                        &token,
                        "a value is at most 63 characters: letters, digits, '-', '_', '.', starting and ending with a letter or digit",
                    ))
                }
            }
            other => Err(self.error(at, &other, "expected a value")),
        }
    }

    fn set(&mut self) -> Result<Vec<String>, SelectorError> {
        match self.next()? {
            (_, Token::Open) => {}
            (at, token) => return Err(self.error(at, &token, "expected \"(\" after in/notin")),
        }
        let mut values = Vec::new();
        loop {
            values.push(self.value()?);
            match self.next()? {
                (_, Token::Comma) => continue,
                (_, Token::Close) => break,
                (at, token) => {
                    return Err(self.error(at, &token, "expected \",\" or \")\" in a value list"));
                }
            }
        }
        Ok(values)
    }
}

/// A label name or value: empty (values only), or up to 63 characters of `[A-Za-z0-9._-]`
/// that start and end with an alphanumeric.
fn valid_name(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_form() {
        let s = LabelSelector::parse(
            "app=web, tier==front,env!=prod,team in (a, b),zone notin (x),canary,!legacy,app.kubernetes.io/name=shop",
        )
        .unwrap();
        use Requirement::*;
        assert_eq!(
            s.requirements(),
            &[
                Equals("app".into(), "web".into()),
                Equals("tier".into(), "front".into()),
                NotEquals("env".into(), "prod".into()),
                In("team".into(), vec!["a".into(), "b".into()]),
                NotIn("zone".into(), vec!["x".into()]),
                Exists("canary".into()),
                DoesNotExist("legacy".into()),
                Equals("app.kubernetes.io/name".into(), "shop".into()),
            ]
        );
        assert_eq!(
            s.to_string(),
            "app=web,tier=front,env!=prod,team in (a,b),zone notin (x),canary,!legacy,app.kubernetes.io/name=shop"
        );
    }

    #[test]
    fn matches_with_kubernetes_semantics() {
        let web = labels(&[("app", "web"), ("env", "dev")]);
        let db = labels(&[("app", "db"), ("env", "prod"), ("legacy", "")]);
        let bare = labels(&[]);
        let check = |sel: &str, expect: [bool; 3]| {
            let s = LabelSelector::parse(sel).unwrap();
            assert_eq!(
                [s.matches(&web), s.matches(&db), s.matches(&bare)],
                expect,
                "{sel}"
            );
        };
        check("app=web", [true, false, false]);
        check("app!=web", [false, true, true]);
        check("app in (web,db)", [true, true, false]);
        check("app notin (web)", [false, true, true]);
        check("legacy", [false, true, false]);
        check("!legacy", [true, false, true]);
        check("app,env=prod", [false, true, false]);
        check("", [true, true, true]);
        check("legacy=", [false, true, false]);
    }

    #[test]
    fn errors_name_the_bad_token() {
        let cases = [
            ("app=web,", "end of input"),
            ("app=(web)", "\"(\""),
            ("app in web", "\"web\""),
            ("app in (a,b", "end of input"),
            ("app>1", "\">\""),
            ("app=web tier=x", "\"tier\""),
            ("Bad_/x=y", "\"Bad_/x\""),
            ("app=w$b", "\"$\""),
            ("-app", "\"-app\""),
            ("app=-web", "\"-web\""),
            ("!", "end of input"),
        ];
        for (sel, token) in cases {
            let err = LabelSelector::parse(sel).unwrap_err();
            assert_eq!(err.token, token, "{sel}: {err}");
            assert!(err.to_string().contains(sel), "{err}");
        }
    }

    #[test]
    fn exact_matches_feed_the_runtime_filter() {
        let s = LabelSelector::parse("app=web,env!=prod,tier in (front),zone in (a,b)").unwrap();
        let exact: Vec<_> = s.exact_matches().collect();
        assert_eq!(exact, vec![("app", "web"), ("tier", "front")]);
    }
}

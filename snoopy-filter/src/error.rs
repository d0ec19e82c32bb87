//! The crate's errors: why an expression did not compile, or program text did not parse.

use std::fmt;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
///
/// [`compile`](crate::compile) returns the narrower [`CompileError`] (it can fail in no other
/// way); this enum is what the crate's other fallible functions return, and what a caller
/// that mixes both can use with `?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A filter expression did not compile.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// Program text (`tcpdump -ddd` output, [`Program::from_ddd`](crate::Program::from_ddd))
    /// is not well formed; says which line and why.
    #[error("program text: {0}")]
    ProgramText(String),
    /// A program that the kernel (or libpcap, for files) would refuse to run
    /// ([`Program::validate`](crate::Program::validate)); says which instruction and why.
    #[error("invalid program: {0}")]
    InvalidProgram(String),
}

/// What kind of failure a [`CompileError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The expression is not well formed (`tcp and and`).
    Syntax,
    /// Well formed, but libpcap rejects it too (`udp proto 6`, `ip6 host 1.2.3.4`).
    Invalid,
    /// Valid pcap-filter syntax that this compiler deliberately does not implement; see the
    /// list in the [crate documentation](crate).
    NotSupported,
    /// The expression is longer than [`MAX_EXPRESSION_LEN`](crate::MAX_EXPRESSION_LEN) bytes.
    TooLong,
    /// Parentheses, `not`s or arithmetic nest deeper than
    /// [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH) (libpcap's parser runs out of stack
    /// there too: "memory exhausted").
    TooDeep,
    /// Before optimisation, the program would have more than
    /// [`MAX_UNOPTIMIZED_INSNS`](crate::MAX_UNOPTIMIZED_INSNS) instructions: refused before
    /// the optimiser spends seconds on it.
    TooComplex,
    /// The optimised program has more than [`BPF_MAXINSNS`](crate::BPF_MAXINSNS)
    /// instructions, so the kernel would refuse to attach it.
    TooManyInstructions,
}

/// An expression that could not be compiled, with the column (1-based, in characters) where
/// the problem was found when it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// The 1-based column of the offending token, if known.
    pub column: Option<usize>,
    /// What went wrong, in tcpdump's words where tcpdump has any.
    pub message: String,
}

impl CompileError {
    pub(crate) fn syntax(column: usize, message: impl Into<String>) -> Self {
        CompileError {
            kind: ErrorKind::Syntax,
            column: Some(column),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        CompileError {
            kind: ErrorKind::Invalid,
            column: None,
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(construct: impl Into<String>) -> Self {
        CompileError {
            kind: ErrorKind::NotSupported,
            column: None,
            message: format!("not supported: {}", construct.into()),
        }
    }

    /// A limit of [`ErrorKind::TooLong`], [`ErrorKind::TooDeep`], [`ErrorKind::TooComplex`]
    /// or [`ErrorKind::TooManyInstructions`]; the message names the limit.
    pub(crate) fn limit(
        kind: ErrorKind,
        column: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        CompileError {
            kind,
            column,
            message: message.into(),
        }
    }

    /// Sets the column if none is set yet (errors found by the code generator learn their
    /// position from the parser that called it).
    pub(crate) fn at(mut self, column: usize) -> Self {
        self.column.get_or_insert(column);
        self
    }

    /// The expression with a caret under the offending column, for terminals.
    pub fn pointer(&self, expr: &str) -> Option<String> {
        let col = self.column?;
        Some(format!("{expr}\n{}^", " ".repeat(col.saturating_sub(1))))
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(col) => write!(f, "column {col}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for CompileError {}

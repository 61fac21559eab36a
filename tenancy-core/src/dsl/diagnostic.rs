//! Spans, diagnostics and their rustc-style rendering (via `codespan-reporting`).

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label, Severity as CsSeverity};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::termcolor::{Ansi, NoColor};
use codespan_reporting::term::{self, Chars, Config};

use super::SourceFile;

/// A byte range inside one source file (`file` indexes the `sources` slice given to `compile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Index of the file in the sources slice.
    pub file: usize,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset one past the last character.
    pub end: usize,
}

impl Span {
    /// A span covering `start..end` of `file`.
    pub fn new(file: usize, start: usize, end: usize) -> Span {
        Span { file, start, end }
    }

    /// The smallest span covering both `self` and `other` (same file assumed).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The model is rejected.
    Error,
    /// Reported, but the model is still produced.
    Warning,
}

/// A secondary label: more context pointing at another place.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Note {
    span: Span,
    message: String,
}

/// One diagnostic: a message, an optional primary label, secondary labels and help lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    severity: Severity,
    message: String,
    primary: Option<(Span, String)>,
    secondary: Vec<Note>,
    help: Vec<String>,
    notes: Vec<String>,
}

impl Diagnostic {
    /// An error with a primary label at `span`.
    pub fn error(message: impl Into<String>, span: Span, label: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Error, message, Some((span, label.into())))
    }

    /// A warning with a primary label at `span`.
    pub fn warning(message: impl Into<String>, span: Span, label: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Warning, message, Some((span, label.into())))
    }

    /// An error that points at no particular place (e.g. something missing from the model).
    pub fn global_error(message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Error, message, None)
    }

    fn new(
        severity: Severity,
        message: impl Into<String>,
        primary: Option<(Span, String)>,
    ) -> Self {
        Diagnostic {
            severity,
            message: message.into(),
            primary,
            secondary: Vec::new(),
            help: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a secondary label (`---` underline) at another place.
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Note {
            span,
            message: message.into(),
        });
        self
    }

    /// Adds a `= help: ...` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help.push(help.into());
        self
    }

    /// Adds a `= note: ...` line.
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// The severity.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// The headline message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The help lines.
    pub fn help(&self) -> &[String] {
        &self.help
    }

    /// The label of the primary span (what the underline says), if there is one.
    pub fn label(&self) -> Option<&str> {
        self.primary.as_ref().map(|(_, label)| label.as_str())
    }

    /// The `= note: ...` lines.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The primary span, if the diagnostic points at a place.
    pub fn span(&self) -> Option<Span> {
        self.primary.as_ref().map(|(s, _)| *s)
    }

    fn to_codespan(&self) -> CsDiagnostic<usize> {
        let severity = match self.severity {
            Severity::Error => CsSeverity::Error,
            Severity::Warning => CsSeverity::Warning,
        };
        let mut labels = Vec::new();
        if let Some((span, label)) = &self.primary {
            labels.push(Label::primary(span.file, span.start..span.end).with_message(label));
        }
        for note in &self.secondary {
            labels.push(
                Label::secondary(note.span.file, note.span.start..note.span.end)
                    .with_message(&note.message),
            );
        }
        let mut notes: Vec<String> = self.notes.iter().map(|n| format!("note: {n}")).collect();
        notes.extend(self.help.iter().map(|h| format!("help: {h}")));
        CsDiagnostic::new(severity)
            .with_message(&self.message)
            .with_labels(labels)
            .with_notes(notes)
    }

    /// Plain one-line form, used when the spans do not fit the given sources.
    fn to_plain(&self) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{kind}: {}\n", self.message);
        for help in &self.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out
    }

    /// Sort key: file, then position; diagnostics without a place come last.
    fn sort_key(&self) -> (usize, usize) {
        match &self.primary {
            Some((span, _)) => (span.file, span.start),
            None => (usize::MAX, 0),
        }
    }
}

/// How many diagnostics [`Diagnostics::render`] shows; the rest are counted in one line, so a
/// file full of errors renders in time linear in what is shown.
pub const MAX_RENDERED: usize = 100;

/// Every error and warning found while compiling a model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty collection.
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    /// Records one diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Adds a `= help:` line to the most recently pushed diagnostic.
    pub(crate) fn add_help_to_last(&mut self, help: String) {
        if let Some(last) = self.items.last_mut() {
            last.help.push(help);
        }
    }

    /// True when at least one error (not a warning) was reported.
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// Every diagnostic, in source order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// The headline messages, in source order (handy in tests).
    pub fn messages(&self) -> Vec<&str> {
        self.items.iter().map(|d| d.message.as_str()).collect()
    }

    /// Orders diagnostics by file and position (stable, so equal positions keep their order).
    pub(crate) fn sort(&mut self) {
        self.items.sort_by_key(Diagnostic::sort_key);
    }

    /// Renders every diagnostic rustc-style (`error: ...`, ` --> file:line:col`, carets,
    /// `= help: ...`), followed by a summary line. `color` adds ANSI colours.
    pub fn render(&self, sources: &[SourceFile], color: bool) -> String {
        let mut files = SimpleFiles::new();
        for source in sources {
            files.add(source.name.as_str(), source.text.as_str());
        }
        let config = Config {
            chars: Chars::ascii(),
            ..Config::default()
        };
        let mut out = String::new();
        for diagnostic in self.items.iter().take(MAX_RENDERED) {
            let cs = diagnostic.to_codespan();
            let mut buffer: Vec<u8> = Vec::new();
            let result = if color {
                term::emit(&mut Ansi::new(&mut buffer), &config, &files, &cs)
            } else {
                term::emit(&mut NoColor::new(&mut buffer), &config, &files, &cs)
            };
            match result {
                Ok(()) => out.push_str(&String::from_utf8_lossy(&buffer)),
                Err(_) => out.push_str(&diagnostic.to_plain()),
            }
        }
        if let Some(hidden) = self
            .items
            .len()
            .checked_sub(MAX_RENDERED)
            .filter(|n| *n > 0)
        {
            out.push_str(&format!(
                "note: {hidden} more diagnostic(s) not shown (the first {MAX_RENDERED} are above)\n"
            ));
        }
        out.push_str(&self.summary());
        out
    }

    /// `error: aborting due to 2 previous errors; 1 warning emitted` (rustc's closing line).
    fn summary(&self) -> String {
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        let (errors, warnings) = (self.error_count(), self.warning_count());
        match (errors, warnings) {
            (0, 0) => String::new(),
            (0, w) => format!("warning: {} emitted\n", plural(w, "warning")),
            (e, 0) => format!("error: aborting due to {}\n", plural(e, "previous error")),
            (e, w) => format!(
                "error: aborting due to {}; {} emitted\n",
                plural(e, "previous error"),
                plural(w, "warning")
            ),
        }
    }
}

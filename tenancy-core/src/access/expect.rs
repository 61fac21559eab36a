//! Policy test files (`policies/*.tenancy-test`): expectations a reviewer or author writes
//! about the access a model gives, checked statically against the model (`tenancy test`).
//!
//! One expectation per line (`//` starts a comment):
//!
//! ```text
//! viewer cannot delete notes
//! editor can update notes where author = current_user
//! editor cannot update notes where author <> current_user
//! anyone can select currencies
//! admin can grant admin
//! admin cannot grant owner
//! ```
//!
//! `R can C T` holds when role `R` may run `C` on every row of its projects; with
//! `where COND`, on every row where `COND` holds. `R cannot C T [where COND]` holds when no row
//! (where `COND` holds) is admitted. `anyone` is every role (every caller on a global table).
//! `R can|cannot grant X` is about the role ceiling. Conditions are written and type-checked
//! as in the policies. A failed expectation is reported like a DSL error, with a counterexample
//! (a caller and a row) found as `tenancy diff` finds them.

use crate::condition::Condition;
use crate::dsl::{self, Diagnostic, Diagnostics, SourceFile, Span};
use crate::model::{Command, Model, Table, TableKind};

use super::counterexample::{self, Counterexample};
use super::matrix::{AccessMatrix, RoleAccess};

/// The file extension of policy test files.
pub const TEST_EXTENSION: &str = "tenancy-test";

/// One checked expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The expectation as written.
    pub text: String,
    /// Where it is written.
    pub span: Span,
    /// `None` when it holds; the reason (and a counterexample when there is one) when not.
    pub failure: Option<Failure>,
    /// What it says, for a check on a live database.
    pub expectation: Expectation,
}

/// What one expectation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The roles it is about (every role for `anyone`).
    pub roles: Vec<String>,
    /// `can` (true) or `cannot`.
    pub can: bool,
    /// A command on a table, or a grant.
    pub action: Action,
}

/// The action of an expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `COMMAND TABLE [where CONDITION]`.
    Access {
        /// The table.
        table: String,
        /// The command.
        command: Command,
        /// The condition, when written.
        condition: Option<Condition>,
    },
    /// `grant ROLE`.
    Grant {
        /// The role given.
        role: String,
    },
}

/// A row (values of the columns `condition` reads) where `condition` holds, for `role` on
/// `table` (any row without a condition); `None` when the search finds none.
pub fn witness_row(
    model: &Model,
    table: &Table,
    command: Command,
    role: &str,
    condition: Option<&Condition>,
) -> Option<Counterexample> {
    let wanted = match condition {
        Some(c) => RoleAccess::Rows(vec![c.clone()]),
        None => RoleAccess::AllRows,
    };
    counterexample::find(
        (model, &wanted),
        (model, &RoleAccess::Denied),
        table,
        command,
        role,
    )
}

/// Why an expectation does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What the model does instead, in words.
    pub reason: String,
    /// A caller and row showing it.
    pub counterexample: Option<String>,
}

/// What a test file says, once parsed.
#[derive(Debug, Clone, PartialEq)]
enum Subject {
    Role(String),
    Anyone,
}

/// Parses and checks every expectation of `file` (index `file_index` in `sources`, for the
/// spans) against `model`. Problems with the file itself go to `diags`; the outcomes of the
/// expectations that could be read are returned.
pub fn check_file(
    model: &Model,
    file_index: usize,
    text: &str,
    diags: &mut Diagnostics,
) -> Vec<Outcome> {
    let matrix = AccessMatrix::of(model);
    let mut outcomes = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.split("//").next().unwrap_or_default().trim_end();
        let lead = content.len() - content.trim_start().len();
        let content = content.trim_start();
        if content.is_empty() {
            continue;
        }
        let span = Span::new(file_index, start + lead, start + lead + content.len());
        if let Some(outcome) = check_line(model, &matrix, content, span, diags) {
            outcomes.push(outcome);
        }
    }
    outcomes
}

/// A word of a line and its span.
struct Word<'a> {
    text: &'a str,
    span: Span,
}

fn words(content: &str, span: Span) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut position = 0;
    for piece in content.split_inclusive(char::is_whitespace) {
        let word = piece.trim_end();
        if !word.is_empty() {
            let start = span.start + position;
            out.push(Word {
                text: word,
                span: Span::new(span.file, start, start + word.len()),
            });
        }
        position += piece.len();
    }
    out
}

fn check_line(
    model: &Model,
    matrix: &AccessMatrix,
    content: &str,
    span: Span,
    diags: &mut Diagnostics,
) -> Option<Outcome> {
    let words = words(content, span);
    let usage =
        "write `ROLE can|cannot COMMAND TABLE [where CONDITION]` or `ROLE can|cannot grant ROLE`";
    let expected = |diags: &mut Diagnostics, at: Span, what: &str| {
        diags.push(
            Diagnostic::error(
                format!("expected {what}"),
                at,
                format!("expected {what} here"),
            )
            .with_help(usage),
        );
    };
    let subject = words.first()?;
    let subject = if subject.text == "anyone" {
        Subject::Anyone
    } else if model.role_rank(subject.text).is_some() {
        Subject::Role(subject.text.to_owned())
    } else {
        diags.push(unknown(
            "role",
            subject.text,
            subject.span,
            model.roles.iter().map(String::as_str).chain(["anyone"]),
        ));
        return None;
    };
    let Some(verb) = words.get(1) else {
        expected(diags, span, "`can` or `cannot`");
        return None;
    };
    let can = match verb.text {
        "can" => true,
        "cannot" => false,
        _ => {
            expected(diags, verb.span, "`can` or `cannot`");
            return None;
        }
    };
    let Some(action) = words.get(2) else {
        expected(diags, span, "a command or `grant`");
        return None;
    };
    if action.text == "grant" {
        let Some(role) = words.get(3) else {
            expected(diags, span, "the role granted");
            return None;
        };
        if model.role_rank(role.text).is_none() {
            diags.push(unknown(
                "role",
                role.text,
                role.span,
                model.roles.iter().map(String::as_str),
            ));
            return None;
        }
        if let Some(extra) = words.get(4) {
            expected(diags, extra.span, "the end of the line");
            return None;
        }
        let failure = check_grant(matrix, &subject, role.text, can);
        return Some(Outcome {
            text: content.to_owned(),
            span,
            failure,
            expectation: Expectation {
                roles: roles_of(model, &subject),
                can,
                action: Action::Grant {
                    role: role.text.to_owned(),
                },
            },
        });
    }
    let Some(command) = Command::ALL
        .into_iter()
        .find(|c| c.keyword() == action.text)
    else {
        diags.push(unknown(
            "command",
            action.text,
            action.span,
            ["select", "insert", "update", "delete", "grant"].into_iter(),
        ));
        return None;
    };
    let Some(table_word) = words.get(3) else {
        expected(diags, span, "a table");
        return None;
    };
    let Some(table) = model.table(table_word.text) else {
        diags.push(unknown(
            "table",
            table_word.text,
            table_word.span,
            model.tables.iter().map(|t| t.name.as_str()),
        ));
        return None;
    };
    let condition = match words.get(4) {
        None => None,
        Some(w) if w.text == "where" => {
            let start = w.span.end - span.start;
            let text = content[start..].trim_start();
            let text_start = span.start + content.len() - text.len();
            let text_span = Span::new(span.file, text_start, span.end);
            if text.is_empty() {
                expected(diags, w.span, "a condition after `where`");
                return None;
            }
            if table.kind != TableKind::Scoped {
                diags.push(
                    Diagnostic::error(
                        format!(
                            "table `{}` is not a scoped table: its rules have no conditions",
                            table.name
                        ),
                        text_span,
                        "a condition here",
                    )
                    .with_help("remove the `where` part"),
                );
                return None;
            }
            Some(compile_condition(model, table, text, text_span, diags)?)
        }
        Some(w) => {
            expected(diags, w.span, "`where` or the end of the line");
            return None;
        }
    };
    let failure = check_access(
        model,
        matrix,
        table,
        command,
        &subject,
        can,
        condition.as_ref(),
    );
    Some(Outcome {
        text: content.to_owned(),
        span,
        failure,
        expectation: Expectation {
            roles: roles_of(model, &subject),
            can,
            action: Action::Access {
                table: table.name.clone(),
                command,
                condition,
            },
        },
    })
}

fn unknown<'a>(
    what: &str,
    name: &str,
    span: Span,
    known: impl Iterator<Item = &'a str>,
) -> Diagnostic {
    let known: Vec<&str> = known.collect();
    let best = known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .fold(None::<(f64, &str)>, |best, c| match best {
            Some(b) if b.0 >= c.0 => Some(b),
            _ => Some(c),
        });
    let diagnostic = Diagnostic::error(
        format!("unknown {what} `{name}`"),
        span,
        format!("not a {what} of the model"),
    );
    match best {
        Some((_, k)) => diagnostic.with_help(format!("did you mean `{k}`?")),
        None => diagnostic.with_note(format!("{what}s are: {}", known.join(", "))),
    }
}

/// Type-checks `text` as a condition on `table` with the policies' own validator: a one-table
/// policy with the same roles and columns and one rule `where <text>` is compiled, and its
/// diagnostics are moved back into the test file.
fn compile_condition(
    model: &Model,
    table: &Table,
    text: &str,
    span: Span,
    diags: &mut Diagnostics,
) -> Option<Condition> {
    let columns: String = table
        .columns
        .iter()
        .map(|c| {
            format!(
                "    {} {}{}\n",
                c.name,
                c.ty.dsl_name(),
                if c.nullable { "?" } else { "" }
            )
        })
        .collect();
    let key = if table.primary_key.is_empty() {
        table
            .columns
            .first()
            .map(|c| c.name.clone())
            .unwrap_or_default()
    } else {
        table.primary_key.join(", ")
    };
    let first_role = model.roles.first().cloned().unwrap_or_default();
    let head = format!(
        "tenancy {{\n    roles = {}\n}}\ntenants table tenancy_test_tenants {{\n    name text\n}}\n\
         projects table tenancy_test_projects {{\n    name text\n}}\n\
         memberships table tenancy_test_members {{\n}}\n\
         scoped table {} {{\n{columns}    primary key ({key})\n    allow select to {first_role} where ",
        model.roles.join(" < "),
        table.name
    );
    let source = format!("{head}{text}\n}}\n");
    let (compiled, found) = dsl::compile(&[SourceFile::new("expectation", source.as_str())]);
    let condition_range = head.len()..head.len() + text.len();
    let mut failed = false;
    for d in found
        .iter()
        .filter(|d| d.severity() == crate::dsl::Severity::Error)
    {
        failed = true;
        let at = d
            .span()
            .filter(|s| condition_range.contains(&s.start))
            .map(|s| {
                let start = span.start + (s.start - head.len());
                let end = (span.start + (s.end.min(condition_range.end) - head.len())).max(start);
                Span::new(span.file, start, end)
            })
            .unwrap_or(span);
        let mut moved = Diagnostic::error(d.message(), at, d.label().unwrap_or("here"));
        for help in d.help() {
            moved = moved.with_help(help.clone());
        }
        for note in d.notes() {
            moved = moved.with_note(note.clone());
        }
        diags.push(moved);
    }
    if failed {
        return None;
    }
    compiled?
        .table(&table.name)?
        .rules
        .iter()
        .find_map(|r| r.condition.clone())
}

/// The roles an expectation is about.
fn roles_of(model: &Model, subject: &Subject) -> Vec<String> {
    match subject {
        Subject::Role(r) => vec![r.clone()],
        Subject::Anyone => model.roles.clone(),
    }
}

fn check_grant(
    matrix: &AccessMatrix,
    subject: &Subject,
    granted: &str,
    can: bool,
) -> Option<Failure> {
    let ceilings: Vec<_> = matrix
        .grant_ceilings
        .iter()
        .filter(|c| match subject {
            Subject::Role(r) => &c.role == r,
            Subject::Anyone => true,
        })
        .collect();
    for ceiling in ceilings {
        let may = ceiling.may_grant.iter().any(|r| r == granted);
        if may != can {
            let reason = if may {
                format!(
                    "`{}` may grant `{granted}` (it may grant {})",
                    ceiling.role,
                    ceiling.may_grant.join(", ")
                )
            } else if ceiling.may_grant.is_empty() {
                format!("`{}` may grant no role", ceiling.role)
            } else {
                format!(
                    "`{}` may grant only {}",
                    ceiling.role,
                    ceiling.may_grant.join(", ")
                )
            };
            return Some(Failure {
                reason,
                counterexample: None,
            });
        }
    }
    None
}

fn check_access(
    model: &Model,
    matrix: &AccessMatrix,
    table: &Table,
    command: Command,
    subject: &Subject,
    can: bool,
    condition: Option<&Condition>,
) -> Option<Failure> {
    let access = matrix.table(&table.name)?.command(command)?;
    let expected = match condition {
        Some(c) => RoleAccess::Rows(vec![c.clone()]),
        None => RoleAccess::AllRows,
    };
    for role in roles_of(model, subject) {
        let actual = if table.kind == TableKind::Global {
            if access.every_caller {
                RoleAccess::AllRows
            } else {
                RoleAccess::Denied
            }
        } else {
            access.access_of(&role)
        };
        let witness: Option<Counterexample> = if can {
            // A row the expectation covers that the model refuses.
            counterexample::find((model, &expected), (model, &actual), table, command, &role)
        } else {
            // A row the expectation covers that the model admits.
            let admitted = match (&actual, condition) {
                (RoleAccess::Denied, _) => RoleAccess::Denied,
                (a, None) => a.clone(),
                (RoleAccess::AllRows, Some(c)) => RoleAccess::Rows(vec![c.clone()]),
                (RoleAccess::Rows(cs), Some(c)) => RoleAccess::Rows(
                    cs.iter()
                        .map(|x| Condition::And(Box::new(x.clone()), Box::new(c.clone())))
                        .collect(),
                ),
            };
            counterexample::find(
                (model, &admitted),
                (model, &RoleAccess::Denied),
                table,
                command,
                &role,
            )
        };
        if let Some(mut witness) = witness {
            if table.kind == TableKind::Global {
                witness.role = None;
            }
            let reason = match (&actual, can) {
                (RoleAccess::Denied, _) => format!("the model refuses `{role}` every row"),
                (a, true) => format!(
                    "the model allows `{role}` only {}",
                    super::diff::access_words(a)
                ),
                (a, false) => format!("the model allows `{role}` {}", super::diff::access_words(a)),
            };
            let text = if can {
                witness.describe_refused(&table.name, command)
            } else {
                witness.describe(&table.name, command)
            };
            return Some(Failure {
                reason,
                counterexample: Some(text),
            });
        }
    }
    None
}

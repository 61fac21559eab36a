//! The three forms of a `tenancy diff` report: plain text (a terminal), JSON (pipelines) and
//! Markdown (a pull-request comment).

use super::diff::{AccessChange, AccessDiff, Effect};

/// One line per change, its counterexample below it, and a summary line.
pub fn to_text(diff: &AccessDiff) -> String {
    if diff.changes.is_empty() {
        return "no change of access\n".to_owned();
    }
    let mut out = String::new();
    for change in &diff.changes {
        out.push_str(&format!(
            "{}: {}\n",
            change.effect.word(),
            change.description
        ));
        if let Some(witness) = witness(change) {
            out.push_str(&format!("  counterexample: {witness}\n"));
        }
    }
    out.push_str(&summary(diff));
    out.push('\n');
    out
}

/// `{"widens": bool, "summary": {...}, "changes": [...]}`; each change carries its
/// counterexample as data and in words (`counterexample_text`).
pub fn to_json(diff: &AccessDiff) -> String {
    let changes: Vec<serde_json::Value> = diff
        .changes
        .iter()
        .map(|change| {
            let mut value = serde_json::to_value(change).unwrap_or_default();
            if let (Some(text), Some(object)) = (witness(change), value.as_object_mut()) {
                object.insert("counterexample_text".to_owned(), text.into());
            }
            value
        })
        .collect();
    let report = serde_json::json!({
        "widens": diff.widens(),
        "summary": {
            "widens": diff.count(Effect::Widens),
            "narrows": diff.count(Effect::Narrows),
            "neutral": diff.count(Effect::Neutral),
        },
        "changes": changes,
    });
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

/// A Markdown section ready for a pull-request comment.
pub fn to_markdown(diff: &AccessDiff) -> String {
    let mut out = String::from("### Access changes (`tenancy diff`)\n\n");
    if diff.changes.is_empty() {
        out.push_str("No change of access.\n");
        return out;
    }
    if diff.widens() {
        out.push_str(
            "**This change widens access**: every widening below needs a security review.\n\n",
        );
    }
    out.push_str(&format!("{}\n\n", summary(diff)));
    out.push_str("| effect | change | counterexample |\n|---|---|---|\n");
    for change in &diff.changes {
        let effect = match change.effect {
            Effect::Widens => "**widens**",
            other => other.word(),
        };
        out.push_str(&format!(
            "| {effect} | {} | {} |\n",
            cell(&change.description),
            witness(change).map(|w| cell(&w)).unwrap_or_default()
        ));
    }
    out
}

/// `3 change(s): 1 widens, 1 narrows, 1 neutral`.
fn summary(diff: &AccessDiff) -> String {
    format!(
        "{} change(s) of access: {} widen, {} narrow, {} neutral",
        diff.changes.len(),
        diff.count(Effect::Widens),
        diff.count(Effect::Narrows),
        diff.count(Effect::Neutral)
    )
}

/// The counterexample of a change in words, with what it does (the column it writes, the
/// role it grants).
fn witness(change: &AccessChange) -> Option<String> {
    let witness = change.counterexample.as_ref()?;
    let table = change.table.as_deref().unwrap_or("user_project_roles");
    if let Some(role) = &change.granted_role {
        let who = witness.role.as_deref().unwrap_or("any caller");
        return Some(format!(
            "a caller holding `{who}` in project P gives another user the role `{role}` in P"
        ));
    }
    let command = change.command?;
    let mut text = witness.describe(table, command);
    if let Some(column) = &change.column {
        text.push_str(&format!(
            ", and the value it writes into `{column}` is kept"
        ));
    }
    Some(text)
}

/// Escapes the characters that end a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The access a migration adds and removes, as SQL comment lines for its header
/// (`-- Access (...):`, one line per change and its counterexample).
pub fn to_sql_comment(diff: &AccessDiff) -> String {
    let mut out =
        String::from("-- Access (what `tenancy diff` reports against the previous model):\n");
    if diff.changes.is_empty() {
        out.push_str("--   no change of access\n");
        return out;
    }
    for change in &diff.changes {
        out.push_str(&format!(
            "--   {}: {}\n",
            change.effect.word(),
            one_line(&change.description)
        ));
        if let Some(witness) = witness(change) {
            out.push_str(&format!("--     counterexample: {}\n", one_line(&witness)));
        }
    }
    out
}

/// `text` on one line (a condition's raw SQL may hold line breaks).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `migration` with the access lines of `diff` at the end of its header comment (before the
/// first blank line), or first when it has no header.
pub fn with_access_header(migration: &str, diff: &AccessDiff) -> String {
    let comment = to_sql_comment(diff);
    match migration.find("\n\n") {
        Some(end) if migration.starts_with("--") => {
            format!(
                "{}\n--\n{}{}",
                &migration[..end],
                comment,
                &migration[end + 1..]
            )
        }
        _ => format!("{comment}\n{migration}"),
    }
}

//! Migration files on disk: names, checksums, and a statement splitter for plans.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::MigrateError;

/// One migration file: `NNNN_name.sql`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The leading digits of the file name (`0003`): the key in the history table.
    pub version: String,
    /// The rest of the file name without `.sql` (`add_documents_summary`).
    pub name: String,
    /// Where the file was read from.
    pub path: PathBuf,
    /// The file's text.
    pub sql: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub checksum: String,
}

impl Migration {
    /// `0003_add_documents_summary.sql`.
    pub fn file_name(&self) -> String {
        format!("{}_{}.sql", self.version, self.name)
    }
}

/// Reads every `*.sql` file of `dir`, sorted by version. Every file name must be
/// `<digits>_<name>.sql` and versions must be unique.
pub fn read_migrations(dir: &Path) -> Result<Vec<Migration>, MigrateError> {
    let io_error = |source| MigrateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut migrations = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        if !path.is_file() || path.extension().is_none_or(|e| e != "sql") {
            continue;
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = file_name.trim_end_matches(".sql");
        let (version, name) = match stem.split_once('_') {
            Some((v, n)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                (v.to_owned(), n.to_owned())
            }
            _ => return Err(MigrateError::BadFileName { file: path }),
        };
        let bytes = std::fs::read(&path).map_err(|source| MigrateError::Io {
            path: path.clone(),
            source,
        })?;
        let sql = String::from_utf8(bytes.clone())
            .map_err(|_| MigrateError::BadFileName { file: path.clone() })?;
        migrations.push(Migration {
            version,
            name,
            path,
            sql,
            checksum: sha256_hex(&bytes),
        });
    }
    migrations.sort_by(|a, b| a.version.cmp(&b.version));
    for pair in migrations.windows(2) {
        if pair[0].version == pair[1].version {
            return Err(MigrateError::DuplicateVersion {
                version: pair[0].version.clone(),
            });
        }
    }
    Ok(migrations)
}

/// SHA-256 of `bytes` as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The first line of each statement of `sql` that is not a comment, whitespace collapsed
/// and cut at `width` characters: a readable plan of what a file does.
pub fn statement_summaries(sql: &str, width: usize) -> Vec<String> {
    split_statements(sql)
        .into_iter()
        .filter_map(|statement| {
            let head = statement
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("--"))?;
            let head: String = head.split_whitespace().collect::<Vec<_>>().join(" ");
            let head = head.trim_end_matches(';').to_owned();
            Some(if head.chars().count() > width {
                let cut: String = head.chars().take(width.saturating_sub(3)).collect();
                format!("{cut}...")
            } else {
                head
            })
        })
        .collect()
}

/// Splits SQL text at top-level semicolons, skipping those inside comments, quoted strings,
/// quoted identifiers and dollar-quoted bodies. Statements made only of comments are dropped.
pub fn split_statements(sql: &str) -> Vec<String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                current.push(chars[i]);
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    current.push_str("/*");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    current.push_str("*/");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    current.push(chars[i]);
                    i += 1;
                }
            }
            continue;
        }
        if c == '\'' || c == '"' {
            current.push(c);
            i += 1;
            while i < chars.len() {
                current.push(chars[i]);
                if chars[i] == c {
                    // A doubled quote is an escaped quote.
                    if chars.get(i + 1) == Some(&c) {
                        current.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            continue;
        }
        if c == '$' {
            if let Some(tag_len) = dollar_tag_len(&chars[i..]) {
                let tag: String = chars[i..i + tag_len].iter().collect();
                current.push_str(&tag);
                i += tag_len;
                let tag_chars: Vec<char> = tag.chars().collect();
                while i < chars.len() {
                    if chars[i..].starts_with(&tag_chars) {
                        current.push_str(&tag);
                        i += tag_len;
                        break;
                    }
                    current.push(chars[i]);
                    i += 1;
                }
                continue;
            }
        }
        if c == ';' {
            current.push(c);
            push_statement(&mut statements, &mut current);
            i += 1;
            continue;
        }
        current.push(c);
        i += 1;
    }
    push_statement(&mut statements, &mut current);
    statements
}

/// Length of a dollar-quote opening tag (`$$`, `$body$`) at the start of `chars`.
fn dollar_tag_len(chars: &[char]) -> Option<usize> {
    let mut len = 1;
    while let Some(&c) = chars.get(len) {
        if c == '$' {
            return Some(len + 1);
        }
        if !(c.is_alphanumeric() || c == '_') || (len == 1 && c.is_ascii_digit()) {
            return None;
        }
        len += 1;
    }
    None
}

/// Moves `current` into `statements` unless it holds only comments and whitespace.
fn push_statement(statements: &mut Vec<String>, current: &mut String) {
    let text = std::mem::take(current);
    let has_code = text
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with("--"));
    if has_code {
        statements.push(text.trim().to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let sql = "-- heading; not a statement\n\
                   CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n\
                   SELECT 'a;b', \"x;y\" /* ; */ FROM t;\n\
                   DO $body$ BEGIN PERFORM 1; END $body$;\n-- trailing comment\n";
        let statements = split_statements(sql);
        assert_eq!(statements.len(), 3, "{statements:#?}");
        assert!(statements[0].contains("SELECT 1; $$;"));
        assert!(statements[1].contains("'a;b'"));
        assert!(statements[2].starts_with("DO $body$"));
    }

    #[test]
    fn summaries_skip_comments_and_cut_long_lines() {
        let sql = "-- note\nALTER TABLE documents\n  ADD COLUMN summary text;\nGRANT SELECT ON TABLE a_very_long_table_name TO someone;";
        assert_eq!(
            statement_summaries(sql, 30),
            ["ALTER TABLE documents", "GRANT SELECT ON TABLE a_ver..."]
        );
    }
}

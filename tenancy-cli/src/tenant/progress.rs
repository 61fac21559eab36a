//! Rows-per-table progress on stderr when it is a terminal; silent when piped.

use std::io::{IsTerminal, Write};

/// Progress output of a long command.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Shows progress when stderr is a terminal.
    pub fn for_stderr() -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Never shows anything.
    pub fn quiet() -> Progress {
        Progress { enabled: false }
    }

    /// `table: N rows` on the current line.
    pub fn rows(&self, table: &str, rows: u64) {
        if self.enabled {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r{table}: {rows} rows");
            let _ = err.flush();
        }
    }

    /// The final count of a table, ending the line.
    pub fn done(&self, table: &str, rows: u64) {
        if self.enabled {
            eprintln!("\r{table}: {rows} rows");
        }
    }
}

//! The memory budget: a model file is untrusted input, so every allocation its graph asks for is
//! checked against a budget before it is made (a 400-byte ONNX file can ask for 14 GB).
//!
//! The budget defaults to half of the machine's physical memory (from `/proc/meminfo`; 8 GiB
//! where that cannot be read) and is set process-wide with [`set_max_bytes`] (the CLI's
//! `--max-memory`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// 0 means "not set yet": the default is computed on first use.
static MAX_BYTES: AtomicU64 = AtomicU64::new(0);

const FALLBACK: u64 = 8 << 30;

thread_local! {
    /// A budget set for the duration of one run on this thread ([`with_limit`]).
    static SCOPED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Runs `f` with the budget `limit` on this thread (the process-wide one when `None`).
pub fn with_limit<T>(limit: Option<u64>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<u64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED.with(|s| s.set(self.0));
        }
    }
    let Some(limit) = limit else {
        return f();
    };
    let _restore = Restore(SCOPED.with(|s| s.replace(Some(limit))));
    f()
}

/// Sets the process-wide budget for every later allocation check, in bytes (at least 1).
pub fn set_max_bytes(bytes: u64) {
    MAX_BYTES.store(bytes.max(1), Ordering::Relaxed);
}

/// The budget in bytes: this thread's [`with_limit`], or the process-wide one.
pub fn max_bytes() -> u64 {
    if let Some(limit) = SCOPED.with(Cell::get) {
        return limit;
    }
    match MAX_BYTES.load(Ordering::Relaxed) {
        0 => {
            let default = default_budget();
            // Another thread may have set it meanwhile; keep theirs.
            let _ = MAX_BYTES.compare_exchange(0, default, Ordering::Relaxed, Ordering::Relaxed);
            MAX_BYTES.load(Ordering::Relaxed)
        }
        set => set,
    }
}

/// Half the physical memory, as `/proc/meminfo` reports it.
fn default_budget() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(FALLBACK, |kib| kib.saturating_mul(1024) / 2)
}

/// Fails with [`Error::MemoryBudget`] when `elements` values of `bytes_per_element` bytes each
/// exceed the budget; `what` names the allocation (an ONNX node, say).
pub fn check(what: impl FnOnce() -> String, elements: u64, bytes_per_element: u64) -> Result<()> {
    let bytes = elements.saturating_mul(bytes_per_element);
    let budget = max_bytes();
    if bytes > budget {
        return Err(Error::MemoryBudget {
            what: what(),
            bytes,
            budget,
        });
    }
    Ok(())
}

/// Parses a size such as `512M`, `8G`, `1.5GiB` or `1000000` (bytes) for `--max-memory`.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 512M, 8G, 1.5GiB)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}` (use K, M, G or T)"
            ));
        }
    };
    let bytes = number * scale;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("`{text}` is not a positive size"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("3X").is_err());
    }
}

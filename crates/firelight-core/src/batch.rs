//! Chunking of expanded batches by `internal_batch_size`, so memory stays bounded.

use std::ops::Range;

use crate::error::{Error, Result};

/// Splits `0..rows` into consecutive ranges of at most `internal_batch_size` rows (all rows at once
/// when it is `None`).
pub fn chunks(rows: usize, internal_batch_size: Option<usize>) -> Result<Vec<Range<usize>>> {
    let size = match internal_batch_size {
        Some(0) => {
            return Err(Error::parameter(
                "internal_batch_size",
                0,
                "must be at least 1 (or unset to run everything in one batch)",
            ));
        }
        Some(n) => n,
        None => rows.max(1),
    };
    Ok((0..rows)
        .step_by(size)
        .map(|start| start..(start + size).min(rows))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_all_rows_in_order() {
        assert_eq!(chunks(5, Some(2)).unwrap(), vec![0..2, 2..4, 4..5]);
        assert_eq!(chunks(5, None).unwrap(), vec![0..5]);
        assert_eq!(chunks(0, None).unwrap(), Vec::<Range<usize>>::new());
        assert!(chunks(3, Some(0)).is_err());
    }
}

//! How alike two explanations are, as Adebayo et al. 2018 compare them: Spearman's rank
//! correlation (SciPy's `spearmanr`, ties ranked by their mean) and the structural similarity of
//! two maps (scikit-image's `structural_similarity` defaults: 7 x 7 uniform window, K1 0.01,
//! K2 0.03, sample covariances, the mean over the window positions that fit) and the correlation
//! of their histograms of oriented gradients (scikit-image's `hog` defaults).

/// Ranks from 1, ties given their mean rank.
fn ranks(values: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = mean;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation of `a` and `b` (NaN when either is constant).
pub fn spearman(a: &[f32], b: &[f32]) -> f64 {
    crate::faithfulness::pearson(&ranks(a), &ranks(b))
}

/// The structural similarity of two `height` x `width` maps with values in a range of
/// `data_range`.
pub fn ssim(a: &[f32], b: &[f32], height: usize, width: usize, data_range: f64) -> f64 {
    const WIN: usize = 7;
    if height < WIN || width < WIN || a.len() != height * width || b.len() != a.len() {
        return f64::NAN;
    }
    let (c1, c2) = ((0.01 * data_range).powi(2), (0.03 * data_range).powi(2));
    let np = (WIN * WIN) as f64;
    let cov_norm = np / (np - 1.0);
    let mut total = 0.0;
    let mut count = 0usize;
    for y in 0..=height - WIN {
        for x in 0..=width - WIN {
            let (mut ma, mut mb, mut aa, mut bb, mut ab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for dy in 0..WIN {
                for dx in 0..WIN {
                    let i = (y + dy) * width + x + dx;
                    let (p, q) = (f64::from(a[i]), f64::from(b[i]));
                    ma += p;
                    mb += q;
                    aa += p * p;
                    bb += q * q;
                    ab += p * q;
                }
            }
            let (ma, mb) = (ma / np, mb / np);
            let va = cov_norm * (aa / np - ma * ma);
            let vb = cov_norm * (bb / np - mb * mb);
            let vab = cov_norm * (ab / np - ma * mb);
            total += ((2.0 * ma * mb + c1) * (2.0 * vab + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            count += 1;
        }
    }
    total / count as f64
}

/// scikit-image's `hog` of a `height` x `width` map (`orientations` 9, 8 x 8 pixels per cell,
/// 3 x 3 cells per block, `L2-Hys` block normalisation): the feature vector, in its order
/// (block row, block column, cell row, cell column, orientation).
pub fn hog(map: &[f32], height: usize, width: usize) -> Vec<f64> {
    const ORIENTATIONS: usize = 9;
    const CELL: usize = 8;
    const BLOCK: usize = 3;
    let at = |y: usize, x: usize| f64::from(map[y * width + x]);
    let (cells_y, cells_x) = (height / CELL, width / CELL);
    let mut histogram = vec![0.0f64; cells_y * cells_x * ORIENTATIONS];
    let per_bin = 180.0 / ORIENTATIONS as f64;
    for y in 0..cells_y * CELL {
        for x in 0..cells_x * CELL {
            // Central differences, zero on the border rows and columns.
            let g_row = if y == 0 || y + 1 == height {
                0.0
            } else {
                at(y + 1, x) - at(y - 1, x)
            };
            let g_col = if x == 0 || x + 1 == width {
                0.0
            } else {
                at(y, x + 1) - at(y, x - 1)
            };
            let magnitude = g_row.hypot(g_col);
            let orientation = g_row.atan2(g_col).to_degrees().rem_euclid(180.0);
            let bin = ((orientation / per_bin) as usize).min(ORIENTATIONS - 1);
            let cell = (y / CELL) * cells_x + x / CELL;
            histogram[cell * ORIENTATIONS + bin] += magnitude / (CELL * CELL) as f64;
        }
    }
    let eps = 1e-5f64;
    let mut out = Vec::new();
    for by in 0..(cells_y + 1).saturating_sub(BLOCK) {
        for bx in 0..(cells_x + 1).saturating_sub(BLOCK) {
            let mut block = Vec::with_capacity(BLOCK * BLOCK * ORIENTATIONS);
            for cy in by..by + BLOCK {
                for cx in bx..bx + BLOCK {
                    let cell = cy * cells_x + cx;
                    block.extend_from_slice(
                        &histogram[cell * ORIENTATIONS..(cell + 1) * ORIENTATIONS],
                    );
                }
            }
            let norm = |b: &[f64]| (b.iter().map(|v| v * v).sum::<f64>() + eps * eps).sqrt();
            let n = norm(&block);
            let clipped: Vec<f64> = block.iter().map(|v| (v / n).min(0.2)).collect();
            let n = norm(&clipped);
            out.extend(clipped.iter().map(|v| v / n));
        }
    }
    out
}

/// The Pearson correlation of two maps' [`hog`] features (Adebayo et al.'s HOG similarity).
pub fn hog_similarity(a: &[f32], b: &[f32], height: usize, width: usize) -> f64 {
    crate::faithfulness::pearson(&hog(a, height, width), &hog(b, height, width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_their_mean_rank_and_order_alone_matters() {
        assert_eq!(ranks(&[10.0, 20.0, 20.0, 5.0]), [2.0, 3.5, 3.5, 1.0]);
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((spearman(&a, &[1.0, 4.0, 9.0, 16.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_map_is_structurally_identical_to_itself_and_not_to_its_negative() {
        let a: Vec<f32> = (0..100).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
        assert!((ssim(&a, &a, 10, 10, 1.0) - 1.0).abs() < 1e-9);
        let flipped: Vec<f32> = a.iter().map(|v| 1.0 - v).collect();
        assert!(ssim(&a, &flipped, 10, 10, 1.0) < 0.0);
    }
}

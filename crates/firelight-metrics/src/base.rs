//! What the metrics share: the target's scores of many rows in bounded chunks, the shape checks of
//! attributions against their input, and per-sample views of host values.

use firelight_core::{DynTensor, Error, Model, Result, Target};

/// The target's score of every row of `rows` (row `r` a copy of sample `samples[r]`), at most
/// `chunk` rows per forward pass (all at once for `None`); the chunking never changes them.
pub(crate) fn scores(
    model: &dyn Model,
    rows: &DynTensor,
    target: &Target,
    samples: &[usize],
    chunk: Option<usize>,
) -> Result<Vec<f32>> {
    let n = rows.batch();
    if samples.len() != n {
        return Err(Error::InvalidTarget(format!(
            "{} sample indices for {n} rows",
            samples.len()
        )));
    }
    let step = chunk.unwrap_or(n).max(1);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = (start + step).min(n);
        let part = rows.rows(start, end).detached();
        let logits = model.predict(&part.into())?;
        let s = target.scores(logits, &samples[start..end])?;
        out.extend(
            s.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| Error::Model(format!("scores: {e:?}")))?,
        );
        start = end;
    }
    Ok(out)
}

/// Fails unless `n` (a parameter's value) is at least 1.
pub(crate) fn at_least_one(name: &'static str, n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::parameter(name, 0, "must be at least 1"));
    }
    Ok(())
}

/// Fails for a `max_examples_per_batch` of 0.
pub(crate) fn check_chunk(chunk: Option<usize>) -> Result<()> {
    match chunk {
        Some(n) => at_least_one("max_examples_per_batch", n),
        None => Ok(()),
    }
}

/// `attributions` as one value per element of `inputs`: the same shape, or `[batch, 1, ...]`
/// repeated over the channels (a CAM over an image's colour channels).
pub(crate) fn per_element(inputs: &DynTensor, attributions: &DynTensor) -> Result<Vec<f32>> {
    let (shape, got) = (inputs.shape(), attributions.shape());
    let values = attributions.to_vec()?;
    if shape == got {
        return Ok(values);
    }
    let one_channel = shape.len() >= 3
        && got.len() == shape.len()
        && got[0] == shape[0]
        && got[1] == 1
        && got[2..] == shape[2..];
    if !one_channel {
        return Err(Error::ShapeMismatch {
            what: "attributions vs the input (the same shape, or one channel for all)".into(),
            expected: shape.to_vec(),
            got: got.to_vec(),
        });
    }
    let (channels, positions) = (shape[1], shape[2..].iter().product::<usize>());
    Ok((0..shape[0])
        .flat_map(|b| {
            let row = &values[b * positions..(b + 1) * positions];
            std::iter::repeat_n(row, channels).flatten().copied()
        })
        .collect())
}

/// A map over an input's positions, `[batch, positions]` row-major: the input is `[batch,
/// channels, ...positions]` (rank 3 and up) or `[batch, features]`; the map is `[batch,
/// ...positions]`, `[batch, 1, ...positions]`, or input-shaped (summed over the channels).
pub(crate) fn per_position(inputs: &DynTensor, map: &DynTensor) -> Result<(usize, Vec<f32>)> {
    let (shape, got) = (inputs.shape(), map.shape());
    let (batch, channels, spatial) = if shape.len() >= 3 {
        (shape[0], shape[1], &shape[2..])
    } else {
        (shape[0], 1, &shape[1..])
    };
    let positions: usize = spatial.iter().product();
    let values = map.to_vec()?;
    let fits = |extra: &[usize]| {
        got.len() == 1 + extra.len() + spatial.len()
            && got[0] == batch
            && got[1..1 + extra.len()] == *extra
            && got[1 + extra.len()..] == *spatial
    };
    if fits(&[]) || fits(&[1]) || (shape.len() < 3 && got == shape) {
        return Ok((positions, values));
    }
    if shape.len() >= 3 && got == shape {
        let summed = (0..batch)
            .flat_map(|b| {
                let v = &values;
                (0..positions).map(move |p| {
                    (0..channels)
                        .map(|c| v[(b * channels + c) * positions + p])
                        .sum::<f32>()
                })
            })
            .collect();
        return Ok((positions, summed));
    }
    Err(Error::ShapeMismatch {
        what: "a map over the input's positions ([batch, ...positions], [batch, 1, \
               ...positions] or the input's own shape)"
            .into(),
        expected: std::iter::once(batch)
            .chain(spatial.iter().copied())
            .collect(),
        got: got.to_vec(),
    })
}

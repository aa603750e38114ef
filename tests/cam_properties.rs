//! Properties of the CAM plumbing and metrics on random inputs (proptest): scaling maps into
//! [0, 1] without NaN whatever the map (all-zero and constant maps included), bilinear resizing
//! never leaves the range of its input, and ROAD's imputed pixels are weighted means, so they stay
//! within the range of the kept pixels (with no noise).

mod common;

use common::*;
use firelight::cam::{resize_bilinear, scale_per_image};
use firelight::metrics::{Road, RoadOrder};
use firelight::prelude::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn scaling_stays_in_the_unit_interval(
        values in prop::collection::vec(-1e3f32..1e3, 1..200),
        constant in prop::bool::ANY,
    ) {
        let values = if constant { vec![values[0]; values.len()] } else { values };
        let scaled = scale_per_image(&values, 1);
        prop_assert!(scaled.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    }

    #[test]
    fn resizing_stays_within_the_input_range(
        h in 1usize..9, w in 1usize..9, to_h in 1usize..30, to_w in 1usize..30, seed in 0u64..1000,
    ) {
        let values: Vec<f32> = (0..h * w)
            .map(|i| (((i as u64 + 1) * (seed + 7) * 2654435761) % 1000) as f32 / 100.0 - 5.0)
            .collect();
        let resized = resize_bilinear(&values, 1, [h, w], [to_h, to_w]);
        prop_assert_eq!(resized.len(), to_h * to_w);
        let (lo, hi) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
        prop_assert!(resized.iter().all(|v| *v >= lo - 1e-4 && *v <= hi + 1e-4));
    }

    #[test]
    fn road_imputes_within_the_range_of_kept_pixels(
        seed in 0u64..1000, percentile in 10f32..90.0, most_first in prop::bool::ANY,
    ) {
        let (c, h, w) = (2usize, 9usize, 11usize);
        let pseudo = |i: usize, k: u64| (((i as u64 + 1) * (seed + k) * 2654435761) % 997) as f32 / 997.0;
        let image: Vec<f32> = (0..c * h * w).map(|i| pseudo(i, 3) * 4.0 - 2.0).collect();
        let map: Vec<f32> = (0..h * w).map(|i| pseudo(i, 11)).collect();
        let d = device();
        let input = DynTensor::from_vec(image.clone(), vec![1, c, h, w], &d).unwrap();
        let maps = DynTensor::from_vec(map, vec![1, h, w], &d).unwrap();
        let order = if most_first { RoadOrder::MostRelevantFirst } else { RoadOrder::LeastRelevantFirst };
        let out = values(&Road::new().noise(0.0).perturb(&input, &maps, order, percentile).unwrap());
        for channel in 0..c {
            let plane = &image[channel * h * w..(channel + 1) * h * w];
            let imputed = &out[channel * h * w..(channel + 1) * h * w];
            let kept: Vec<f32> = plane.iter().zip(imputed).filter(|(a, b)| a == b).map(|(a, _)| *a).collect();
            prop_assume!(!kept.is_empty());
            let (lo, hi) = kept.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
            prop_assert!(imputed.iter().all(|v| *v >= lo - 1e-4 && *v <= hi + 1e-4));
        }
    }
}

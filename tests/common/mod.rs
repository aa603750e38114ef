//! Helpers shared by the integration tests.
#![allow(dead_code)]

use firelight::prelude::*;

/// The device the tests run on: flex (CPU), or the one `FIRELIGHT_TEST_DEVICE` names
/// (`wgpu`, `cuda`; `remote`: flex served over WebSocket on loopback by the test process itself)
/// when the matching feature is built:
/// `FIRELIGHT_TEST_DEVICE=wgpu cargo test --workspace --features wgpu`.
pub fn device() -> Device {
    match std::env::var("FIRELIGHT_TEST_DEVICE").as_deref() {
        Ok("flex") | Err(_) => Device::flex(),
        #[cfg(feature = "wgpu")]
        Ok("wgpu") => Device::wgpu(Default::default()),
        #[cfg(feature = "cuda")]
        Ok("cuda") => Device::cuda(0),
        #[cfg(feature = "remote")]
        Ok("remote") => remote_device(),
        Ok(other) => panic!("FIRELIGHT_TEST_DEVICE={other}: not a device this build has"),
    }
}

/// A device of a flex server this test process runs on loopback (started on first use).
#[cfg(feature = "remote")]
pub fn remote_device() -> Device {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let url = URL.get_or_init(|| {
        firelight::core::remote::DeviceServer::new([Device::flex()])
            .spawn_local()
            .expect("a loopback server")
    });
    firelight::core::remote::connect(url, None).expect("the loopback server")
}

/// Host values of a tensor.
pub fn values(t: &DynTensor) -> Vec<f32> {
    t.to_vec().unwrap()
}

/// Host values of a rank-1 tensor.
pub fn values1(t: &Tensor<1>) -> Vec<f32> {
    t.to_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

/// `||a - b|| / ||b||` (absolute when `b` is zero).
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A tensor of `shape` from a deterministic pseudo-random sequence in `[-scale, scale]`.
pub fn pseudo_random(shape: &[usize], seed: u64, scale: f32) -> DynTensor {
    let n: usize = shape.iter().product();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let data = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32;
            (2.0 * u - 1.0) * scale
        })
        .collect();
    DynTensor::from_vec(data, shape.to_vec(), &device()).unwrap()
}

pub mod onnx_weights;

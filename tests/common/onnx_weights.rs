//! The generated weights of the ONNX ResNet-18 parity fixture.
//!
//! `tests/fixtures/onnx_resnet18/model.onnx` keeps its initializers as ONNX external data in
//! `weights.bin`, which is not committed: this module rebuilds it from `weights.json` with the same
//! generator as `tools/parity/onnx_common.py` (bit for bit). Per tensor, a splitmix64 stream seeded
//! with the FNV-1a hash of the tensor's name gives `u` in `[-1, 1)`, and element `i` (row-major) is
//! `offset + scale * u_i` in `f32`.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The splitmix64 generator.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// An output mapped to `[-1, 1)`, exactly (24 bits).
pub fn uniform(z: u64) -> f32 {
    ((z >> 40) as f32) / 16_777_216.0 * 2.0 - 1.0
}

/// The `len` values of tensor `name`.
pub fn generate(name: &str, len: usize, offset: f32, scale: f32) -> Vec<f32> {
    let mut rng = SplitMix64(fnv1a64(name.as_bytes()));
    (0..len)
        .map(|_| offset + scale * uniform(rng.next_u64()))
        .collect()
}

fn hex(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().expect("a hex string"), 16).expect("hex")
}

/// Checks the generator against the test vector Python wrote into `weights.json` (`check`).
pub fn check_test_vector(manifest: &Value) {
    let check = &manifest["check"];
    let name = check["name"].as_str().unwrap();
    let seed = fnv1a64(name.as_bytes());
    assert_eq!(seed, hex(&check["fnv1a64"]), "fnv1a64({name})");
    let mut rng = SplitMix64(seed);
    for (i, (z, u)) in check["splitmix64"]
        .as_array()
        .unwrap()
        .iter()
        .zip(check["u"].as_array().unwrap())
        .enumerate()
    {
        let got = rng.next_u64();
        assert_eq!(got, hex(z), "splitmix64 output {i} for {name}");
        assert_eq!(uniform(got), u.as_f64().unwrap() as f32, "u {i} for {name}");
    }
}

/// Reads `weights.json` (the manifest next to the model) and writes the file it describes into
/// `dir`; returns its path. Tensors are float32 little-endian, back to back, in manifest order.
pub fn write_weights(manifest_path: &Path, dir: &Path) -> PathBuf {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    check_test_vector(&manifest);
    assert_eq!(manifest["dtype"], "float32");
    assert_eq!(manifest["byte_order"], "little");
    let total = manifest["total_bytes"].as_u64().unwrap() as usize;
    let mut bytes = Vec::with_capacity(total);
    for t in manifest["tensors"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let len: usize = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .product();
        assert_eq!(
            t["byte_offset"].as_u64().unwrap() as usize,
            bytes.len(),
            "{name}: offset"
        );
        assert_eq!(
            t["byte_length"].as_u64().unwrap() as usize,
            4 * len,
            "{name}: length"
        );
        let offset = t["offset"].as_f64().unwrap() as f32;
        let scale = t["scale"].as_f64().unwrap() as f32;
        for v in generate(name, len, offset, scale) {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    assert_eq!(bytes.len(), total, "total size");
    let path = dir.join(manifest["file"].as_str().unwrap());
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A folder under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new, empty folder whose name starts with `prefix`.
    pub fn new(prefix: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the fixture's `model.onnx` into a fresh temp folder next to a rebuilt `weights.bin`;
/// returns the folder (removed on drop) and the model's path there.
pub fn materialize(fixture_dir: &Path) -> (TempDir, PathBuf) {
    let dir = TempDir::new("firelight-onnx-fixture");
    let model = dir.path().join("model.onnx");
    std::fs::copy(fixture_dir.join("model.onnx"), &model).unwrap();
    write_weights(&fixture_dir.join("weights.json"), dir.path());
    (dir, model)
}

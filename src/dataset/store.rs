//! A data-set job's results in object storage (S3, GCS, Azure, or `file://`), through the
//! `object_store` crate: the job runs in a local staging folder, and every file it writes is
//! uploaded as soon as it is whole, a chunk's marker after its files; a restart first downloads
//! the markers, so it resumes from what the store holds. An object store has no half-written
//! objects (a PUT appears whole or not at all), which is what the temp-file-then-rename of a local
//! folder gives.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use firelight_core::npy::write_atomic;
use firelight_core::{Error, Result};
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload};
use url::Url;

use super::Written;

/// Where a job's results go when `--out` is a URL: the store, its prefix, and the runtime that
/// drives its requests.
#[derive(Clone)]
pub struct ObjectStoreOut {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for ObjectStoreOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectStoreOut({})", self.url)
    }
}

/// The environment variables one of which a cloud store needs for its credentials, checked before
/// anything runs: without them `object_store` would fall back to the cloud's metadata service,
/// which off that cloud hangs in retries instead of failing.
fn credential_variables(scheme: &ObjectStoreScheme) -> &'static [&'static str] {
    match scheme {
        ObjectStoreScheme::AmazonS3 => &[
            "AWS_ACCESS_KEY_ID",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_SKIP_SIGNATURE",
        ],
        ObjectStoreScheme::GoogleCloudStorage => &[
            "GOOGLE_SERVICE_ACCOUNT",
            "GOOGLE_SERVICE_ACCOUNT_PATH",
            "GOOGLE_SERVICE_ACCOUNT_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "SERVICE_ACCOUNT",
        ],
        ObjectStoreScheme::MicrosoftAzure => &[
            "AZURE_STORAGE_ACCOUNT_KEY",
            "AZURE_STORAGE_ACCESS_KEY",
            "AZURE_STORAGE_SAS_KEY",
            "AZURE_STORAGE_TOKEN",
            "AZURE_CLIENT_SECRET",
            "AZURE_FEDERATED_TOKEN_FILE",
            "AZURE_USE_AZURE_CLI",
            "AZURE_STORAGE_USE_EMULATOR",
        ],
        _ => &[],
    }
}

impl ObjectStoreOut {
    /// The store `url` names, its credentials taken from the environment (`AWS_*`, `GOOGLE_*`,
    /// `AZURE_*`, as `object_store` reads them). Fails naming the variables when a cloud store has
    /// none of them.
    pub fn open(url: &str) -> Result<Self> {
        let bad = |reason: String| Error::parameter("out", url, reason);
        let parsed = Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
        let (scheme, _) = ObjectStoreScheme::parse(&parsed).map_err(|e| {
            bad(format!(
                "{e}; object storage is s3://, gs://, az:// (or file:// for a local store)"
            ))
        })?;
        let needed = credential_variables(&scheme);
        if !needed.is_empty() && !needed.iter().any(|v| std::env::var_os(v).is_some()) {
            return Err(bad(format!(
                "no credentials for {scheme:?} in the environment: set one of {}",
                needed.join(", ")
            )));
        }
        let options: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| {
                k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_")
            })
            .map(|(k, v)| (k.to_lowercase(), v))
            .collect();
        let (store, prefix) =
            object_store::parse_url_opts(&parsed, options).map_err(|e| bad(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Self {
            url: url.to_string(),
            store: Arc::from(store),
            prefix,
            runtime: Arc::new(runtime),
        })
    }

    fn location(&self, name: &str) -> StorePath {
        name.split('/')
            .fold(self.prefix.clone(), |path, part| path.clone().join(part))
    }

    fn failed(&self, what: &str, name: &str, e: impl std::fmt::Display) -> Error {
        Error::parameter("out", &self.url, format!("cannot {what} `{name}`: {e}"))
    }

    /// A local staging folder for this store's job, under the system's temporary folder and
    /// this process's own: shards started on one machine must not share one (each clears its
    /// staging when it starts). The store holds the state, so nothing staged is needed later.
    pub fn staging(&self) -> PathBuf {
        let hash = firelight_core::randomize::layer_seed(&self.url);
        std::env::temp_dir().join(format!(
            "firelight-staging-{hash:016x}-{}",
            std::process::id()
        ))
    }

    /// Uploads the staged file `name` (relative to `staging`).
    pub fn upload(&self, staging: &Path, name: &str) -> Result<()> {
        let local = staging.join(name);
        let bytes = std::fs::read(&local).map_err(|e| Error::io(&local, e))?;
        self.runtime
            .block_on(
                self.store
                    .put(&self.location(name), PutPayload::from(bytes)),
            )
            .map_err(|e| self.failed("upload", name, e))?;
        Ok(())
    }

    /// Downloads what a restart needs into `staging`: `job.json` and the chunks' markers (the
    /// attributions stay in the store). What was staged before goes first: the store is the
    /// truth, and a marker left from a store since emptied would skip a chunk it lacks.
    pub fn download_state(&self, staging: &Path) -> Result<usize> {
        for stale in [staging.join("chunks"), staging.join("attributions")] {
            if stale.exists() {
                std::fs::remove_dir_all(&stale).map_err(|e| Error::io(&stale, e))?;
            }
        }
        for stale in [staging.join("job.json"), staging.join("index.jsonl")] {
            if stale.exists() {
                std::fs::remove_file(&stale).map_err(|e| Error::io(&stale, e))?;
            }
        }
        std::fs::create_dir_all(staging.join("chunks")).map_err(|e| Error::io(staging, e))?;
        let mut names = vec!["job.json".to_string()];
        let chunks = self.location("chunks");
        let listed: Vec<_> = self
            .runtime
            .block_on(self.store.list(Some(&chunks)).try_collect::<Vec<_>>())
            .map_err(|e| self.failed("list", "chunks/", e))?;
        for meta in listed {
            if let Some(file) = meta.location.filename()
                && file.ends_with(".jsonl")
            {
                names.push(format!("chunks/{file}"));
            }
        }
        let mut markers = 0;
        for name in names {
            let got = self
                .runtime
                .block_on(async { self.store.get(&self.location(&name)).await?.bytes().await });
            match got {
                Ok(bytes) => {
                    write_atomic(&staging.join(&name), &bytes)?;
                    markers += usize::from(name != "job.json");
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failed("download", &name, e)),
            }
        }
        Ok(markers)
    }

    /// A [`Written`] that uploads each file a job writes in `staging`, deleting a chunk's staged
    /// attributions once they are up (markers and `job.json` stay for resuming).
    pub fn uploader(&self, staging: &Path) -> Written {
        let (out, staging) = (self.clone(), staging.to_path_buf());
        Written(Arc::new(move |names: &[String]| {
            for name in names {
                out.upload(&staging, name)?;
            }
            for name in names.iter().filter(|n| n.starts_with("attributions/")) {
                let _ = std::fs::remove_file(staging.join(name));
            }
            Ok(())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cloud_url_without_credentials_names_the_variables() {
        // SAFETY: no other test of this binary reads these variables.
        for name in credential_variables(&ObjectStoreScheme::AmazonS3) {
            unsafe { std::env::remove_var(name) };
        }
        let err = ObjectStoreOut::open("s3://bucket/audit")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no credentials") && err.contains("AWS_ACCESS_KEY_ID"),
            "{err}"
        );
        let err = ObjectStoreOut::open("ftp://host/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://"), "{err}");
    }

    #[test]
    fn files_go_up_and_the_markers_come_back() {
        let root = std::env::temp_dir().join(format!("firelight-store-{}", std::process::id()));
        let (store_dir, staging) = (root.join("store"), root.join("staging"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(staging.join("chunks")).unwrap();
        std::fs::create_dir_all(staging.join("attributions")).unwrap();
        std::fs::create_dir_all(&store_dir).unwrap();
        let out = ObjectStoreOut::open(&format!("file://{}", store_dir.display())).unwrap();
        std::fs::write(staging.join("job.json"), b"{}").unwrap();
        std::fs::write(staging.join("attributions/a.npy"), b"numbers").unwrap();
        std::fs::write(staging.join("chunks/chunk-000000.jsonl"), b"line\n").unwrap();
        let names = [
            "job.json",
            "attributions/a.npy",
            "chunks/chunk-000000.jsonl",
        ]
        .map(String::from);
        (out.uploader(&staging).0)(&names).unwrap();
        assert_eq!(
            std::fs::read(store_dir.join("attributions/a.npy")).unwrap(),
            b"numbers"
        );
        assert!(
            !staging.join("attributions/a.npy").exists(),
            "uploaded attributions are unstaged"
        );
        let fresh = root.join("fresh");
        assert_eq!(out.download_state(&fresh).unwrap(), 1);
        assert_eq!(
            std::fs::read(fresh.join("chunks/chunk-000000.jsonl")).unwrap(),
            b"line\n"
        );
        assert!(fresh.join("job.json").is_file());
    }
}

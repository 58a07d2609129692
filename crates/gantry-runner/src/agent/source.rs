//! `actions/checkout` on a runner: the run's commit comes from the server
//! (`GET /runner/jobs/{job}/source`, a tar archive of the commit's tree, under the job's
//! fencing token) and is unpacked into the workspace. The tar reader refuses entries that
//! would land outside the destination (absolute paths, `..`), so a hostile archive cannot
//! write beyond the job's directory.

use std::path::Path;

use super::client::ProtocolClient;
use crate::steps::{SourceError, SourceProvider};

/// The most a checkout may weigh, as the archive arrives.
const MAX_ARCHIVE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The server as the source of one claimed job's checkout.
pub struct ServerSource {
    client: ProtocolClient,
    job_id: i64,
    fencing_token: i64,
}

impl ServerSource {
    /// The source of job `job_id` under the claim's `fencing_token`.
    pub fn new(client: ProtocolClient, job_id: i64, fencing_token: i64) -> ServerSource {
        ServerSource {
            client,
            job_id,
            fencing_token,
        }
    }
}

impl SourceProvider for ServerSource {
    fn checkout(
        &self,
        repository: &str,
        _sha: &str,
        destination: &Path,
    ) -> Result<(), SourceError> {
        // The server serves the run's own commit; the sha the step names is that one.
        let archive = self
            .client
            .source(
                self.job_id,
                self.fencing_token,
                repository,
                MAX_ARCHIVE_BYTES,
            )
            .map_err(|error| {
                SourceError::Unavailable(format!("cannot fetch the source: {error}"))
            })?;
        unpack(&archive, destination)
    }
}

/// Unpacks a tar archive into `destination`.
fn unpack(archive: &[u8], destination: &Path) -> Result<(), SourceError> {
    let mut reader = tar::Archive::new(archive);
    reader.set_preserve_permissions(true);
    reader
        .unpack(destination)
        .map_err(|source| SourceError::Io {
            what: format!("cannot unpack the source into `{}`", destination.display()),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &str, u32)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, text, mode) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(*mode);
            header.set_cksum();
            builder
                .append_data(&mut header, path, text.as_bytes())
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn files_land_with_their_modes_and_nothing_escapes() {
        let dir = tempfile::tempdir().unwrap();
        unpack(
            &archive(&[
                ("README.md", "hello\n", 0o644),
                ("bin/run.sh", "#!/bin/sh\n", 0o755),
            ]),
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
            "hello\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("bin/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);

        // A hostile entry climbing out of the destination is not written there.
        let mut raw = tar::Header::new_gnu();
        let name = b"../escaped.txt";
        raw.as_old_mut().name[..name.len()].copy_from_slice(name);
        raw.set_size(3);
        raw.set_mode(0o644);
        raw.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&raw, &b"bad"[..]).unwrap();
        let hostile = builder.into_inner().unwrap();
        let inner = dir.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        let _ = unpack(&hostile, &inner);
        assert!(!dir.path().join("escaped.txt").exists());
    }
}

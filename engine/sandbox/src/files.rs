//! Files only their owner reads: the sandbox's state holds every Secret, its kubeconfig a
//! token. Written whole or not at all (a temp file of a unique name, then a rename), so two
//! writers never share a temp file and a reader never sees half a file.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Creates `dir` (and its parents) and makes it `0700`.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Writes `data` to `path` with mode `0600`, atomically.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        // Folders it has to make are its owner's only; existing ones are left as they are.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let token: u64 = rand::random();
    let tmp = path.with_file_name(format!(".{name}.{}.{token:016x}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself survives a crash once the folder is synced.
        std::fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_in_0700_folders_and_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("cairn-files-{}", std::process::id()));
        let inner = dir.join("a/b");
        private_dir(&inner).unwrap();
        let file = inner.join("state.json");
        write_private(&file, b"one").unwrap();
        write_private(&file, b"two").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&inner), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(&inner).unwrap().collect();
        assert_eq!(left.len(), 1, "no temp file is left behind");
        // Folders a write has to make are private too.
        let deep = dir.join("made/by/write/kubeconfig");
        write_private(&deep, b"token").unwrap();
        assert_eq!(mode(&dir.join("made")), 0o700);
        assert_eq!(mode(&dir.join("made/by/write")), 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

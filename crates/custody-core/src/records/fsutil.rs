//! File-system helpers shared by the state store, the audit log and the
//! keystore: atomic durable replacement of a file, an inter-process lock,
//! and private permissions.
//!
//! On unix every file created here is `0o600` and every directory `0o700`
//! (before the umask, which can only narrow them).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Mode of files created by this module (unix).
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;
/// Mode of directories created by this module (unix).
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// How many temp-file names [`write_atomic`] tries before giving up.
const TEMP_NAME_ATTEMPTS: u32 = 8;

/// Options for creating a new private file (`0o600` on unix).
fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    o
}

/// Opens (creating if needed) a private file for appending and reading.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    private_options()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
}

/// Rejects names that are not a single plain path component.
fn check_name(name: &str) -> io::Result<()> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0');
    if plain {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "file name must be a single path component",
        ))
    }
}

/// Flushes a directory's entries (a rename or a new file in it) to disk.
/// A no-op where directories cannot be opened as files (Windows).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The directory that holds `path`'s entry (`.` for a bare relative name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` (and missing parents) with mode `0o700`, then makes each
/// new entry durable in its parent. An existing directory is left as it is.
///
/// # Errors
/// Any I/O error.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // The directories about to be created, deepest first.
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .collect();
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(DIR_MODE);
    }
    b.create(dir)?;
    for d in missing.iter().rev() {
        sync_dir(parent_dir(d))?;
    }
    Ok(())
}

/// Replaces `dir/name` with `bytes` atomically and durably.
///
/// Writes a uniquely named temp file (`.<name>.<pid>.<random>.tmp`, mode
/// `0o600`) in `dir`, fsyncs it, renames it over `dir/name` and fsyncs
/// `dir`. A crash at any point leaves either the old file or the new one,
/// never a torn one (at worst a stray temp file, which readers ignore). When
/// this returns `Ok`, the new contents survive a power loss.
///
/// # Errors
/// `InvalidInput` if `name` is not a single path component; any I/O error
/// (the temp file is removed on a failed write).
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    check_name(name)?;
    let target = dir.join(name);
    let (tmp_path, mut tmp) = create_temp(dir, name)?;
    let written = tmp
        .write_all(bytes)
        .and_then(|()| tmp.sync_all())
        .and_then(|()| {
            drop(tmp);
            fs::rename(&tmp_path, &target)
        });
    if let Err(e) = written {
        // Best effort: the temp file holds nothing the target did not.
        let _ = fs::remove_file(&tmp_path);
        return Err(e);
    }
    sync_dir(dir)
}

/// Creates a fresh temp file for `name` in `dir`.
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut last_err = None;
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|_| io::Error::other("the OS RNG failed"))?;
        let path = dir.join(format!(".{name}.{pid}.{}.tmp", hex::encode(nonce)));
        match private_options().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((path, f)),
            // Only if a 64-bit random name repeats: try another.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free temp file name")))
}

/// Reads a whole file, or `None` if it does not exist.
///
/// # Errors
/// Any I/O error other than `NotFound`.
pub(crate) fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// An exclusive lock on a lock file, held until dropped.
///
/// The lock excludes other processes *and* other threads of this process:
/// every [`DirLock::lock`] opens its own file handle, and the OS lock
/// (`flock` on unix, `LockFileEx` on Windows) belongs to that handle. It is
/// advisory: it only excludes code that takes the same lock. The lock file is
/// created (empty, `0o600`) if missing and never deleted, because deleting a
/// lock file that another process is about to lock would let two holders in.
#[derive(Debug)]
pub(crate) struct DirLock {
    file: File,
}

impl DirLock {
    fn open(path: &Path) -> io::Result<File> {
        private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    }

    /// Blocks until the lock on `path` is held.
    ///
    /// # Errors
    /// Any I/O error opening or locking the file.
    pub(crate) fn lock(path: &Path) -> io::Result<Self> {
        let file = Self::open(path)?;
        file.lock()?;
        Ok(Self { file })
    }

    /// Takes the lock on `path` if it is free, or returns `None` at once.
    ///
    /// # Errors
    /// Any I/O error opening or locking the file.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "for the keystore, which must not wait on a held store"
        )
    )]
    pub(crate) fn try_lock(path: &Path) -> io::Result<Option<Self>> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the handle releases the lock too; unlocking first just makes
        // it explicit. Nothing useful can be done with an error here.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_creates_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "f", b"one").unwrap();
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"one");
        write_atomic(dir.path(), "f", b"two, longer").unwrap();
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"two, longer");
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
    }

    #[test]
    fn write_atomic_rejects_paths() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
            let e = write_atomic(dir.path(), bad, b"x").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn write_atomic_fails_cleanly_in_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(write_atomic(&missing, "f", b"x").is_err());
        assert!(!missing.exists());
    }

    #[cfg(unix)]
    #[test]
    fn created_files_and_dirs_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a").join("b");
        create_private_dir(&sub).unwrap();
        for d in [dir.path().join("a"), sub.clone()] {
            let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & !0o700, 0, "{d:?} has mode {mode:o}");
        }
        write_atomic(&sub, "f", b"x").unwrap();
        let lock = DirLock::lock(&sub.join("f.lock")).unwrap();
        drop(lock);
        for f in ["f", "f.lock"] {
            let mode = fs::metadata(sub.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & !0o600, 0, "{f} has mode {mode:o}");
        }
    }

    #[test]
    fn read_optional_distinguishes_missing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_optional(&dir.path().join("nope")).unwrap(), None);
        fs::write(dir.path().join("yes"), b"y").unwrap();
        assert_eq!(
            read_optional(&dir.path().join("yes")).unwrap(),
            Some(b"y".to_vec())
        );
        // A directory is an error, not "missing".
        assert!(read_optional(dir.path()).is_err());
    }

    #[test]
    fn lock_excludes_other_handles_and_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.lock");
        let held = DirLock::lock(&path).unwrap();
        // A second handle in the same process is excluded too.
        assert!(DirLock::try_lock(&path).unwrap().is_none());
        drop(held);
        let again = DirLock::try_lock(&path).unwrap();
        assert!(again.is_some());
    }

    #[test]
    fn lock_serializes_threads() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("l.lock"));
        let inside = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let path = Arc::clone(&path);
                let inside = Arc::clone(&inside);
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _g = DirLock::lock(&path).unwrap();
                        assert!(!inside.swap(true, Ordering::SeqCst), "two holders");
                        std::thread::yield_now();
                        inside.store(false, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}

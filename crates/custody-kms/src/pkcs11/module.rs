//! [`Pkcs11Module`]: a PKCS#11 library, loaded and initialized once per
//! process.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};

use super::error::{Pkcs11Error, ReturnCode};

/// A PKCS#11 module (a vendor's `.so`), loaded and initialized
/// (`C_Initialize` with `CKF_OS_LOCKING_OK`: the module is called from many
/// threads) once per process. Cheap to clone; every clone is the same
/// module.
///
/// PKCS#11 allows one `C_Initialize` per module per process, and a module's
/// sessions and logins are process-wide. So modules live in a process-wide
/// map keyed by their canonical path: every [`Pkcs11Module::load`] of the
/// same file returns the same module, and every [`crate::Pkcs11Token`] on
/// it shares its login state. A module stays loaded until the process exits
/// (it is never finalized: another component may be using it). A module
/// that another component of the process initialized first
/// (`CKR_CRYPTOKI_ALREADY_INITIALIZED`) is used as it is.
#[derive(Clone)]
pub struct Pkcs11Module {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Pkcs11,
    path: PathBuf,
    /// Bumped when this crate re-initializes the module: sessions opened
    /// before belong to a finalized module and their handles may since have
    /// been reused, so they are never closed by handle.
    generation: AtomicU64,
}

fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11Module>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11Module>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// `C_Initialize`, where "already initialized" (by us earlier, or by another
/// component of the process) counts as success.
fn initialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Pkcs11Module {
    /// The module at `path`, loaded and initialized on first use in this
    /// process, shared afterwards.
    ///
    /// # Errors
    /// An `unavailable` [`Pkcs11Error`] if the library cannot be loaded
    /// (missing file, not a PKCS#11 module, missing dependencies) or
    /// `C_Initialize` fails.
    pub fn load(path: &Path) -> Result<Self, Pkcs11Error> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut map = modules().lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = map.get(&key) {
            return Ok(m.clone());
        }
        let unavailable = |code, reason| Pkcs11Error::ModuleUnavailable {
            path: path.display().to_string(),
            code,
            reason,
        };
        let ctx = Pkcs11::new(&key).map_err(|e| {
            unavailable(
                ReturnCode::of(&e),
                "the library cannot be loaded (missing file, missing dependencies, or not a PKCS#11 module)",
            )
        })?;
        initialize(&ctx).map_err(|e| unavailable(ReturnCode::of(&e), "C_Initialize failed"))?;
        let module = Self {
            inner: Arc::new(Inner {
                ctx,
                path: key.clone(),
                generation: AtomicU64::new(0),
            }),
        };
        map.insert(key, module.clone());
        Ok(module)
    }

    /// The module's canonical path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn ctx(&self) -> &Pkcs11 {
        &self.inner.ctx
    }

    /// `C_Initialize` again, after a call found the module finalized
    /// (`CKR_CRYPTOKI_NOT_INITIALIZED`: another component of the process
    /// called `C_Finalize`).
    pub(crate) fn reinitialize(&self) -> Result<(), CkError> {
        match self
            .inner
            .ctx
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            Ok(()) => {
                self.inner.generation.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The current initialization generation (see `reinitialize`).
    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }
}

impl PartialEq for Pkcs11Module {
    /// The same loaded module (not merely the same path).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Pkcs11Module {}

impl fmt::Debug for Pkcs11Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Module")
            .field("path", &self.inner.path)
            .finish()
    }
}

//! Placeholder until the disk work merges (its signatures, not its behaviour).
use crate::report::Emit;
use ironbay_wire::command::WipeMethod;
use ironbay_wire::inventory::Disk;
use ironbay_wire::progress::{DiskWipe, ImageWrite};

#[derive(Debug, thiserror::Error)]
#[error("not built yet")]
pub struct DiskError;
impl DiskError {
    pub fn code(&self) -> &'static str {
        "NOT_BUILT"
    }
}
pub fn wipe(_disk: &Disk, _method: WipeMethod, _emit: Emit<'_>) -> DiskWipe {
    unimplemented!()
}
pub fn write_image(_url: &str, _sha256: &str, _disk: &Disk, _emit: Emit<'_>) -> Result<ImageWrite, DiskError> {
    Err(DiskError)
}
pub fn describe(_path: &std::path::Path) -> Result<Disk, DiskError> {
    Err(DiskError)
}

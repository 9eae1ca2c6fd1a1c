//! Disk operations: wipe and image write (filled in by the disk work).

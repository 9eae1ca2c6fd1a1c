//! Inventory collection (filled in by the inventory work).

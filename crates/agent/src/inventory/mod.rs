//! Placeholder until the inventory work merges.
use ironbay_wire::inventory::Inventory;
pub fn collect() -> Inventory {
    Inventory::default()
}

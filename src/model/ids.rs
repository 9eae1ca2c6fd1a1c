//! Prefixed, opaque identifiers (`ast_…`, `usr_…`): the prefix tells a reader what an id names, the
//! random tail tells nothing about order or count.

use rand::RngExt;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// 16 characters of base-36: ~82 bits, unguessable and collision-free at any scale we will see.
const TAIL_LEN: usize = 16;

/// The kinds of object that carry an id, each with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Asset,
    User,
    ApiKey,
    Session,
    RefreshToken,
    Audit,
    Vni,
    Psk,
    EnrollToken,
    Device,
    Policy,
    Webhook,
    WebhookDelivery,
    /// A webhook event (one per change; each delivery of it carries the same id).
    Event,
    Workflow,
    /// An OS image in the images registry.
    Image,
    /// A Talos cluster.
    Cluster,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Asset => "ast",
            IdKind::User => "usr",
            IdKind::ApiKey => "key",
            IdKind::Session => "ses",
            IdKind::RefreshToken => "rft",
            IdKind::Audit => "aud",
            IdKind::Vni => "vni",
            IdKind::Psk => "psk",
            IdKind::EnrollToken => "enr",
            IdKind::Device => "dev",
            IdKind::Policy => "pol",
            IdKind::Webhook => "whk",
            IdKind::WebhookDelivery => "dlv",
            IdKind::Event => "evt",
            IdKind::Workflow => "wf",
            IdKind::Image => "img",
            IdKind::Cluster => "cls",
        }
    }
}

/// A new random id of the given kind.
pub fn new_id(kind: IdKind) -> String {
    format!("{}_{}", kind.prefix(), random_tail(TAIL_LEN))
}

/// Random lowercase base-36 characters from the OS CSPRNG.
pub fn random_tail(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// True when `id` has the kind's prefix and a tail of our alphabet: lets handlers answer 404 for
/// garbage without touching the store.
pub fn looks_like(kind: IdKind, id: &str) -> bool {
    id.strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|tail| tail.len() == TAIL_LEN && tail.bytes().all(|b| ALPHABET.contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_are_unique() {
        let a = new_id(IdKind::Asset);
        let b = new_id(IdKind::Asset);
        assert!(a.starts_with("ast_"));
        assert_ne!(a, b);
        assert!(looks_like(IdKind::Asset, &a));
        assert!(!looks_like(IdKind::User, &a));
        assert!(!looks_like(IdKind::Asset, "ast_../../etc"));
    }
}

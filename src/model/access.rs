//! Roles and scopes: what a principal may do. A user's role grants a fixed set of scopes; an API
//! key carries an explicit subset of its owner's.

use std::fmt;
use std::str::FromStr;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The scopes this role grants. Viewers read inventory; operators also change it and read
    /// secrets they operate with (PSK values, audit); only admins change guard rails (policies,
    /// webhooks), delete PSKs and administer.
    pub fn scopes(self) -> &'static [Scope] {
        use Scope::*;
        const VIEWER: &[Scope] = &[AssetsRead, ClustersRead, WorkflowsRead, VnisRead, DevicesRead, PoliciesRead];
        const OPERATOR: &[Scope] = &[
            AssetsRead,
            AssetsWrite,
            ClustersRead,
            ClustersWrite,
            WorkflowsRead,
            VnisRead,
            VnisWrite,
            PsksRead,
            PsksWrite,
            DevicesRead,
            DevicesWrite,
            PoliciesRead,
            AuditRead,
            WebhooksRead,
        ];
        match self {
            Role::Viewer => VIEWER,
            Role::Operator => OPERATOR,
            Role::Admin => &Scope::ALL,
        }
    }

    pub fn grants(self, scope: Scope) -> bool {
        self.scopes().contains(&scope)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!("`{other}` is not a role (viewer, operator, admin)")),
        }
    }
}

macro_rules! scopes {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// A permission an API key can carry, named `resource:verb`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
        pub enum Scope { $($variant),+ }

        impl Scope {
            pub const ALL: [Scope; [$($name),+].len()] = [$(Scope::$variant),+];
            pub const fn as_str(self) -> &'static str {
                match self { $(Scope::$variant => $name),+ }
            }
        }

        impl FromStr for Scope {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Scope::$variant),)+
                    other => Err(format!("`{other}` is not a scope")),
                }
            }
        }
    };
}

scopes! {
    AssetsRead => "assets:read",
    AssetsWrite => "assets:write",
    ClustersRead => "clusters:read",
    ClustersWrite => "clusters:write",
    WorkflowsRead => "workflows:read",
    VnisRead => "vnis:read",
    VnisWrite => "vnis:write",
    PsksRead => "psks:read",
    PsksWrite => "psks:write",
    PsksDelete => "psks:delete",
    DevicesRead => "devices:read",
    DevicesWrite => "devices:write",
    PoliciesRead => "policies:read",
    PoliciesWrite => "policies:write",
    AuditRead => "audit:read",
    WebhooksRead => "webhooks:read",
    WebhooksWrite => "webhooks:write",
    Admin => "admin",
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_nested() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for s in Role::Viewer.scopes() {
            assert!(Role::Operator.grants(*s), "{s}");
        }
        for s in Role::Operator.scopes() {
            assert!(Role::Admin.grants(*s), "{s}");
        }
        assert!(!Role::Operator.grants(Scope::Admin));
    }

    #[test]
    fn scope_names_round_trip() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), s);
        }
    }
}

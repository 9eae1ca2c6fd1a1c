//! ironbay: a self-hosted bare-metal provisioning appliance in one binary. See ARCHITECTURE.md.

pub mod agent;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bmc;
pub mod boot;
pub mod config;
pub mod console;
pub mod dhcp;
pub mod error;
pub mod http;
pub mod ipam;
pub mod library;
pub mod live;
pub mod model;
pub mod netif;
pub mod pki;
pub mod policy;
pub mod secret;
pub mod server;
pub mod store;
pub mod talos;
pub mod tftp;
pub mod webhooks;
pub mod workflow;

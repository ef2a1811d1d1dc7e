//! What every client shares on its way to the cluster: the settings of
//! [`NetworkConfig`].

mod config;

pub use config::NetworkConfig;

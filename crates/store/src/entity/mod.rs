//! sea-orm entities, one per table of the `migrations` crate. Times are ms since the Unix epoch.

pub mod abandon_stat;
pub mod agent;
pub mod agent_campaign;
pub mod api_token;
pub mod attempt;
pub mod audit;
pub mod callback;
pub mod campaign;
pub mod campaign_zone_set;
pub mod contact;
pub mod contact_list;
pub mod disposition;
pub mod dnc;
pub mod session;
pub mod user;
pub mod zone_set;
